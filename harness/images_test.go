package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/meshtls/meshtls/envoybin"
)

func TestEnvoyRootfsHasLoaderAndLibraries(t *testing.T) {
	bin, _, err := envoybin.Find("")
	if err != nil {
		t.Fatal(err)
	}
	files, err := envoyRootfs(bin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.name)
	}
	all := strings.Join(names, "\n")
	for _, want := range []string{"rootfs/usr/local/bin/envoy", "ld-linux", "libc.so.6", "libm.so.6"} {
		if !strings.Contains(all, want) {
			t.Errorf("rootfs lacks %s; has:\n%s", want, all)
		}
	}
}

// Images are tagged by content: the same context builds once, a changed one
// gets a new tag.
func TestBuildImageIsContentTaggedAndBuiltOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("live: needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := dockerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctxFiles := func(content string) []file {
		return []file{
			{name: "Dockerfile", data: []byte("FROM scratch\nCOPY x /x\n"), mode: 0o644},
			{name: "x", data: []byte(content), mode: 0o644},
		}
	}
	var builds int
	logf := func(f string, a ...any) {
		if strings.HasPrefix(f, "building image") {
			builds++
		}
	}
	stamp := time.Now().String() // a context no earlier run built
	first, err := buildImage(ctx, cli, "meshtls/test", ctxFiles(stamp), logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), first, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	again, err := buildImage(ctx, cli, "meshtls/test", ctxFiles(stamp), logf)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || builds != 1 {
		t.Fatalf("second build of the same content: tag %s (first %s), %d builds; want the same tag and 1 build", again, first, builds)
	}
	other, err := buildImage(ctx, cli, "meshtls/test", ctxFiles(stamp+"x"), logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), other, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	if other == first {
		t.Fatalf("changed content kept tag %s", first)
	}
}

// ENVOY_IMAGE names a ready-made image: it is used as is, and one that is
// not in the local engine is an error with the fix (nothing is pulled).
func TestEnvoyImageFromEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("live: needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := dockerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVOY_VERSION", "")
	built, err := ensureImages(ctx, cli, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVOY_IMAGE", built.Envoy)
	got, err := ensureImages(ctx, cli, "", t.Logf)
	if err != nil || got.Envoy != built.Envoy {
		t.Fatalf("ENVOY_IMAGE=%s: got %q, %v", built.Envoy, got.Envoy, err)
	}
	// A version asked for cannot be checked against an image: refused.
	if _, err := ensureImages(ctx, cli, "1.38.3", t.Logf); err == nil || !strings.Contains(err.Error(), "unset one") {
		t.Fatalf("ENVOY_IMAGE with --envoy-version: %v, want a refusal", err)
	}
	t.Setenv("ENVOY_IMAGE", "meshtls/no-such-envoy:1")
	if _, err := ensureImages(ctx, cli, "", t.Logf); err == nil || !strings.Contains(err.Error(), "never pulls") {
		t.Fatalf("missing ENVOY_IMAGE: err = %v, want the no-pull fix", err)
	}
}

// The pod image holds the running binary: a static one alone, a
// dynamically linked one (go install with cgo) with its loader and
// libraries, and a non-ELF file is refused with the reason.
func TestPodRootfsStaticAndDynamic(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler for a cgo build")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"os/user\"\n\nfunc main() { _, _ = user.Current() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cgo := range []string{"0", "1"} {
		bin := filepath.Join(dir, "prog-cgo"+cgo)
		cmd := exec.Command("go", "build", "-o", bin, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOFLAGS=-mod=mod")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		t.Setenv("MESHTLS_POD_BINARY", bin)
		files, err := podRootfs()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.name)
		}
		all := strings.Join(names, " ")
		switch {
		case cgo == "0" && all != "rootfs/meshtls-pod":
			t.Errorf("static binary: rootfs %s, want only rootfs/meshtls-pod", all)
		case cgo == "1" && (!strings.Contains(all, "ld-linux") || !strings.Contains(all, "libc.so.6")):
			t.Errorf("dynamic binary: rootfs %s lacks its loader or libc", all)
		}
	}
	t.Setenv("MESHTLS_POD_BINARY", src)
	if _, err := podRootfs(); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("a Go source file as pod binary: %v, want a refusal with the reason", err)
	}
}
