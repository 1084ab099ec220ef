package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/envoybin"
)

// "meshtls alone is enough": a built meshtls, or a test in another module
// importing the harness, runs a mesh from a directory outside the source
// tree with no environment variables, once `meshtls setup` has filled the
// user cache.

// cleanEnv is the environment of a fresh shell: none of the variables that
// point meshtls at an Envoy or a pod binary, or configure testcontainers
// (the Makefile exports TESTCONTAINERS_RYUK_DISABLED; the harness needs
// nobody to), and no GOFLAGS.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ENVOY_") || strings.HasPrefix(k, "MESHTLS_") || strings.HasPrefix(k, "TESTCONTAINERS_") || k == "GOFLAGS" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// setupUserCache is `meshtls setup` (a no-op when Envoy is installed).
func setupUserCache(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := envoybin.Install(ctx, envoybin.Default, "", t.Logf); err != nil {
		t.Fatalf("meshtls setup: %v", err)
	}
}

func repoDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestStandaloneBinary is a fresh machine: meshtls installed with
// `go install` (cgo on, so dynamically linked) into an empty directory,
// `meshtls setup` filling an empty user cache from PyPI, and
// `meshtls run --junit` in another empty directory.
func TestStandaloneBinary(t *testing.T) {
	live(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "meshtls")
	build := exec.Command("go", "install", ".")
	build.Env = append(cleanEnv(), "CGO_ENABLED=1", "GOBIN="+dir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	bundle, err := os.ReadFile("testdata/two-pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "bundle.yaml"), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	// Only meshtls sees the empty cache (go install keeps its build cache).
	env := append(cleanEnv(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	setup := exec.Command(bin, "setup")
	setup.Dir, setup.Env = work, env
	if out, err := setup.CombinedOutput(); err != nil || !strings.Contains(string(out), "installed Envoy") {
		t.Fatalf("meshtls setup with an empty user cache: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--junit", "out.xml", "bundle.yaml")
	cmd.Dir, cmd.Env = work, env
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if code != 1 || !strings.Contains(string(out), "1 passed, 1 failed, 1 reported") {
		t.Fatalf("meshtls run in an empty directory: exit %d (%v), want 1 with one deliberate failure:\n%s", code, err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "out.xml")); err != nil {
		t.Errorf("--junit out.xml: %v", err)
	}
}

const scratchTest = `package scratch

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

const bundle = ` + "`" + `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  sidecar: false
` + "`" + `

func TestStrict(t *testing.T) {
	m, err := mesh.Parse("bundle.yaml", []byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, m)
	rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/",
		harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS),
		harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	rt.ApplyConfig(t, ` + "`" + `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
` + "`" + `)
	rt.Call(t, "plain", "http://b.default.svc.cluster.local:8080/", harness.ExpectNotOK())
}
`

// TestScratchModule is a Go test in another module that imports the
// harness (a replace directive points at this tree), run with `go test`
// from its own directory and no environment variables.
func TestScratchModule(t *testing.T) {
	live(t)
	setupUserCache(t)
	repo, err := filepath.Abs(repoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goMod := "module example.com/scratch\n\ngo 1.26\n\nrequire github.com/meshtls/meshtls v0.0.0\n\nreplace github.com/meshtls/meshtls => " + repo + "\n"
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sum, "scratch_test.go": []byte(scratchTest)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// go mod tidy adds the harness's requirements, as for a user; then
	// go test runs with none of meshtls's variables.
	for _, args := range [][]string{{"mod", "tidy"}, {"test", "-count=1", "-v", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in a scratch module: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "test" && !strings.Contains(string(out), "--- PASS: TestStrict") {
			t.Fatalf("go test in a scratch module:\n%s", out)
		}
	}
}
