package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// Live tests: real containers and Envoy. They skip under -short; without
// Docker or Envoy `run` exits 2 with the harness's fix, and the test fails
// showing it.

func live(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("live test: needs Docker and Envoy (run without -short)")
	}
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
}

// jsonOutput mirrors `run -o json` as a client would read it.
type jsonOutput struct {
	Checks  []trace.Result `json:"checks"`
	Summary struct {
		Total, Passed, Failed, Reported, Scenarios int
		DurationMS                                 int64 `json:"durationMs"`
	} `json:"summary"`
}

// TestRunTwoPods runs testdata/two-pods.yaml once with every output and
// checks each: the JSON contract, the HTML report and the saved evidence.
func TestRunTwoPods(t *testing.T) {
	live(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	artifacts := filepath.Join(dir, "evidence")
	start := time.Now()
	code, out, errOut := run(t, "run", "-o", "json", "--report", report, "--artifacts", artifacts, "testdata/two-pods.yaml")
	t.Logf("meshtls run took %v", time.Since(start).Round(time.Millisecond))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one expectation is deliberately wrong)\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}

	t.Run("json", func(t *testing.T) {
		// stdout is exactly one JSON object and nothing else.
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		var got jsonOutput
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("stdout is not the JSON object: %v\n%s", err, out)
		}
		if rest, _ := bufio.NewReader(dec.Buffered()).ReadString(0); strings.TrimSpace(rest) != "" {
			t.Errorf("stdout has more after the object: %q", rest)
		}
		var raw struct {
			Checks []map[string]json.RawMessage `json:"checks"`
		}
		if err := json.Unmarshal([]byte(out), &raw); err != nil {
			t.Fatal(err)
		}
		for _, c := range raw.Checks {
			for _, k := range []string{"scenario", "name", "from", "to", "result", "status", "wire", "peer", "reason", "verdict", "hops"} {
				if v, ok := c[k]; !ok || string(v) == "null" {
					t.Errorf("check %s: key %q missing or null", c["name"], k)
				}
			}
		}
		s := got.Summary
		if s.Total != 3 || s.Passed != 1 || s.Failed != 1 || s.Reported != 1 || s.Scenarios != 1 || s.DurationMS <= 0 {
			t.Errorf("summary %+v, want total 3, passed 1, failed 1, reported 1, scenarios 1, durationMs > 0", s)
		}
		want := []struct {
			name    string
			verdict outcome.Verdict
			wire    outcome.Wire
		}{
			{"a-to-b", outcome.Pass, outcome.MTLS},
			{"a-to-b-wrongly-expects-plaintext", outcome.Fail, outcome.MTLS},
			{"b-to-a", outcome.Report, outcome.MTLS},
		}
		if len(got.Checks) != len(want) {
			t.Fatalf("%d checks, want %d", len(got.Checks), len(want))
		}
		for i, w := range want {
			c := got.Checks[i]
			if c.Name != w.name || c.Verdict != w.verdict || c.Scenario != "two-pods" || c.Result != outcome.OK || outcome.Join(c.Wire, ",") != string(w.wire) {
				t.Errorf("check %d: %s verdict %s result %s wire %v scenario %s; want %s %s ok [%s] two-pods\n%s",
					i, c.Name, c.Verdict, c.Result, c.Wire, c.Scenario, w.name, w.verdict, w.wire, c.Explain())
			}
			if len(c.Hops) == 0 {
				t.Errorf("check %s: no hops", c.Name)
			}
		}
		if got.Checks[1].Artifacts == "" {
			t.Error("the failed check does not say where its evidence is")
		}
		if !strings.Contains(errOut, "evidence of failed checks") || !strings.Contains(errOut, artifacts) {
			t.Errorf("stderr does not give the evidence path %s:\n%s", artifacts, errOut)
		}
	})

	t.Run("report", func(t *testing.T) {
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		for _, want := range []string{"two-pods", `<table class="matrix">`, "a-to-b-wrongly-expects-plaintext", `class="cell fail"`, `<span class="lock">mTLS</span>`, "http://b.default.svc.cluster.local:8080"} {
			if !strings.Contains(page, want) {
				t.Errorf("report lacks %q", want)
			}
		}
	})

	t.Run("artifacts", func(t *testing.T) {
		var dumps []string
		err := filepath.WalkDir(artifacts, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), "config_dump") {
				dumps = append(dumps, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(dumps) == 0 {
			t.Fatalf("no config_dump file under %s", artifacts)
		}
		for _, p := range dumps {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a private key", p)
			}
		}
	})
}

// TestRunTable checks the human output: the table, the failed check's
// explanation, and no progress lines when stderr is not a terminal.
func TestRunTable(t *testing.T) {
	live(t)
	t.Setenv("COLUMNS", "100") // the table fits, the rows wrap
	code, out, errOut := run(t, "run", "testdata/two-pods.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	for _, want := range []string{"SCENARIO", "VERDICT", "two-pods", "a-to-b-wrongly-expects-plaintext", "check a-to-b-wrongly-expects-plaintext (scenario two-pods): FAIL", "1 passed, 1 failed, 1 reported"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "✓") || strings.Contains(errOut, "✗") {
		t.Errorf("progress lines on a non-terminal stderr:\n%s", errOut)
	}
	table, _, _ := strings.Cut(out, "\ncheck ")
	for _, l := range strings.Split(table, "\n") {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("COLUMNS=100: a table line is %d wide: %q", n, l)
		}
	}
	if !strings.Contains(out, "-v prints one row per check") {
		t.Errorf("a wrapped table does not say how to see it whole:\n%s", out)
	}
}

// TestRunInterrupt stops a real `meshtls run` with SIGINT while its pods
// are up and checks it exits 130 and leaves no container or network behind.
func TestRunInterrupt(t *testing.T) {
	live(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("this test lists containers with the docker CLI: install docker.io (make setup)")
	}
	bin := filepath.Join(t.TempDir(), "meshtls")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "-v", "testdata/two-pods.yaml")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	// Everything the run creates carries the owning process's pid, which
	// keeps this test apart from other runs on the same engine.
	mine := "label=dev.meshtls.pid=" + pid
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		if ids := dockerIDs(t, "ps", "-aq", "--filter", mine); len(ids) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended (%v) before its pods existed:\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no container of the run appeared in 90s:\n%s", stderr.String())
		case <-time.After(100 * time.Millisecond): // polling docker ps
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("run did not exit within 90s of SIGINT:\n%s", stderr.String())
	}
	t.Logf("exited %v after SIGINT; stderr:\n%s", time.Since(sent).Round(time.Millisecond), stderr.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("exit: %v, want status %d\nstderr:\n%s", err, exitInterrupted, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
	}
	if ids := dockerIDs(t, "ps", "-aq", "--filter", mine); len(ids) > 0 {
		t.Errorf("containers left behind after SIGINT: %v", ids)
	}
	if ids := dockerIDs(t, "network", "ls", "-q", "--filter", mine); len(ids) > 0 {
		t.Errorf("networks left behind after SIGINT: %v", ids)
	}
}

func dockerIDs(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// TestTestdataBundles runs every scenarios/testdata bundle the way a user
// does, in one `meshtls run` of the directory (pods shared between bundles
// that declare the same workloads), and reports each bundle as a subtest.
func TestTestdataBundles(t *testing.T) {
	live(t)
	dir := filepath.Join("..", "..", "scenarios", "testdata")
	code, out, errOut := run(t, "run", "-o", "json", dir)
	var got jsonOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("exit %d; stdout is not the JSON object (%v)\nstderr:\n%s", code, err, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	byScenario := map[string][]trace.Result{}
	for _, c := range got.Checks {
		byScenario[c.Scenario] = append(byScenario[c.Scenario], c)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			if len(byScenario[name]) == 0 {
				t.Fatal("no check results for this bundle")
			}
			want := exploredMatrix[name]
			for _, c := range byScenario[name] {
				if c.Explored {
					cell := trace.MatrixCell{Result: c.Outcome(), Wire: c.Wire}.String()
					if w, ok := want[c.From+" → "+c.Dest]; !ok || w != cell || c.Verdict != outcome.Report {
						t.Errorf("explored %s → %s: %s (%s), want %q\n%s", c.From, c.Dest, cell, c.Verdict, w, c.Explain())
					}
					delete(want, c.From+" → "+c.Dest)
					continue
				}
				if c.Verdict != outcome.Pass {
					t.Errorf("%s\n", c.Explain())
				}
			}
			for call, cell := range want {
				t.Errorf("no explored call %s (want %s)", call, cell)
			}
		})
	}
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// exploredMatrix is what exploring the kubectl dumps must observe. Namespace
// shop injects (ratings opts out), legacy does not; ratings' DestinationRule
// asks for ISTIO_MUTUAL towards a pod without sidecar (503 from the client's
// sidecar); with STRICT in shop, every plaintext caller of shop's sidecars is
// reset.
var exploredMatrix = func() map[string]map[string]string {
	before := map[string]string{
		"shop/frontend-0 → sleep.legacy:80":                                                   "ok [plaintext]",
		"shop/ratings → sleep.legacy:80":                                                      "ok [plaintext]",
		"shop/reviews → sleep.legacy:80":                                                      "ok [plaintext]",
		"shop/ratings → frontend.shop:80":                                                     "ok [plaintext]",
		"shop/reviews → frontend.shop:80":                                                     "ok [mtls]",
		"legacy/sleep → frontend.shop:80":                                                     "ok [plaintext]",
		"shop/frontend-0 → ratings.shop:9080":                                                 "http-503 [tls]",
		"shop/reviews → ratings.shop:9080":                                                    "http-503 [tls]",
		"legacy/sleep → ratings.shop:9080":                                                    "ok [plaintext]",
		"shop/frontend-0 → reviews.shop:9080":                                                 "ok [mtls]",
		"shop/ratings → reviews.shop:9080":                                                    "ok [plaintext]",
		"legacy/sleep → reviews.shop:9080":                                                    "ok [plaintext]",
		"meshtls-explore/outside → shop.example.com:80 via istio-system/istio-ingressgateway": "ok [plaintext,mtls]",
	}
	after := map[string]string{}
	for k, v := range before {
		after[k] = v
	}
	for _, k := range []string{"shop/ratings → frontend.shop:80", "legacy/sleep → frontend.shop:80", "shop/ratings → reviews.shop:9080", "legacy/sleep → reviews.shop:9080"} {
		after[k] = "reset [plaintext]"
	}
	return map[string]map[string]string{"16-cluster-shop": before, "17-cluster-shop-strict": after}
}()

// TestDiffClusterDump: meshtls diff of the kubectl dump before and after a
// STRICT PeerAuthentication lists exactly the plaintext calls into shop's
// sidecars as broken, exits 1, and writes the changes in JSON and HTML.
func TestDiffClusterDump(t *testing.T) {
	live(t)
	report := filepath.Join(t.TempDir(), "diff.html")
	dir := filepath.Join("..", "..", "scenarios", "testdata")
	code, out, errOut := run(t, "diff", "-o", "json", "--report", report, filepath.Join(dir, "16-cluster-shop.yaml"), filepath.Join(dir, "17-cluster-shop-strict.yaml"))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (STRICT breaks plaintext callers)\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	var got diffOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not the diff object: %v\n%s", err, out)
	}
	var changes []string
	for _, c := range got.Changes {
		changes = append(changes, fmt.Sprintf("%s → %s  %s → %s %v", c.From, c.To, c.Before, c.After, c.Broke))
	}
	slices.Sort(changes)
	want := []string{
		"legacy/sleep → frontend.shop:80  ok [plaintext] → reset [plaintext] true",
		"legacy/sleep → reviews.shop:9080  ok [plaintext] → reset [plaintext] true",
		"shop/ratings → frontend.shop:80  ok [plaintext] → reset [plaintext] true",
		"shop/ratings → reviews.shop:9080  ok [plaintext] → reset [plaintext] true",
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
	if s := got.Summary; s.Calls != 13 || s.Changed != 4 || s.Broke != 4 {
		t.Errorf("summary %+v, want 13 calls, 4 changed, 4 broke", s)
	}
	if len(got.Before.Matrix) != 1 || len(got.After.Matrix) != 1 || len(got.Before.Matrix[0].Cells) != 13 {
		t.Errorf("each side has its matrix of 13 calls: before %+v", got.Before.Matrix)
	}
	// Each hop names the Istio resources that decided its TLS.
	decided := func(side runOutput, check string, hop int) string {
		for _, c := range side.Checks {
			if c.Name == check && hop < len(c.Hops) && c.Hops[hop].Decided != nil {
				return strings.Join(c.Hops[hop].Decided.Lines(), "; ")
			}
		}
		return "(none)"
	}
	for _, tc := range []struct {
		side  runOutput
		check string
		hop   int
		want  string
	}{
		{got.After, "explore: legacy/sleep → reviews.shop:9080", 0, "PeerAuthentication shop/default (namespace): STRICT"},
		{got.Before, "explore: legacy/sleep → reviews.shop:9080", 0, "PeerAuthentication no PeerAuthentication (Istio's default): PERMISSIVE"},
		{got.Before, "explore: shop/frontend-0 → ratings.shop:9080", 0, "DestinationRule shop/ratings: ISTIO_MUTUAL"},
		{got.Before, "explore: shop/frontend-0 → reviews.shop:9080", 0, "DestinationRule auto mTLS (no DestinationRule): ISTIO_MUTUAL to endpoints with a sidecar; PeerAuthentication no PeerAuthentication (Istio's default): PERMISSIVE"},
		{got.Before, "explore: meshtls-explore/outside → shop.example.com:80 via istio-system/istio-ingressgateway", 0, "Gateway shop/shop-gateway spec.servers[0] (HTTP, on targetPort 8080 of Service istio-system/istio-ingressgateway port 80)"},
		{got.Before, "explore: meshtls-explore/outside → shop.example.com:80 via istio-system/istio-ingressgateway", 1, "VirtualService shop/frontend spec.http[0].route[0]; DestinationRule auto mTLS"},
	} {
		if d := decided(tc.side, tc.check, tc.hop); !strings.HasPrefix(d, tc.want) {
			t.Errorf("%s hop %d decided by %q, want %q", tc.check, tc.hop+1, d, tc.want)
		}
	}
	// The explored call via the gateway dials its pod where the gateway
	// Service's port 80 lands (8080), and the trace says so.
	for _, c := range got.Before.Checks {
		if c.Via != "" && (len(c.Hops) == 0 || !strings.HasSuffix(c.Hops[0].Dst, ":8080") ||
			!slices.ContainsFunc(c.Hops[0].Notes, func(n string) bool { return strings.Contains(n, "targets 8080") })) {
			t.Errorf("%s: first hop %+v, want to the gateway's port 8080 with a note why", c.Name, c.Hops)
		}
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<h2>changes</h2>", "PeerAuthentication shop/default (namespace): STRICT", "legacy/sleep → frontend.shop:80", "reset [plaintext]", `<span class="cell fail">broke</span>`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("report lacks %q", w)
		}
	}
}

// TestRunControlPlaneIstio runs testdata/two-pods.yaml with istiod's own
// config (the oracle program; make test sets MESHTLS_ORACLE): the same
// verdicts as under meshtls's, and the call went over Istio mTLS.
func TestRunControlPlaneIstio(t *testing.T) {
	live(t)
	if os.Getenv("MESHTLS_ORACLE") == "" {
		t.Skip("needs the oracle program: make oracle-build, then MESHTLS_ORACLE=$PWD/bin/meshtls-oracle (make test sets it)")
	}
	code, out, errOut := run(t, "run", "-o", "json", "--control-plane", "istio", "testdata/two-pods.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one expectation is deliberately wrong)\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	var got jsonOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not the JSON object: %v\n%s", err, out)
	}
	if s := got.Summary; s.Passed != 1 || s.Failed != 1 || s.Reported != 1 {
		t.Errorf("summary %+v, want 1 passed, 1 failed, 1 reported as under meshtls's config", s)
	}
	for _, c := range got.Checks {
		if c.Name == "a-to-b" && (c.Result != outcome.OK || !slices.Equal(c.Wire, []outcome.Wire{outcome.MTLS})) {
			t.Errorf("a-to-b under istiod's config: %s %v, want ok [mtls]", c.Result, c.Wire)
		}
	}
}
