package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

const reportBundle = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: gw, labels: {istio: ingressgateway}}
spec:
  gateway: true
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: one}
spec:
  from: a
  to: http://a.default.svc.cluster.local:8080/
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: two}
spec:
  from: a
  to: https://a.example.com/
  via: gw
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: three}
spec:
  from: a
  to: http://a.default.svc.cluster.local:8080/x
`

func TestWriteReport(t *testing.T) {
	m, err := mesh.Parse("s.yaml", []byte(reportBundle))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(file, []byte(reportBundle), 0o644); err != nil {
		t.Fatal(err)
	}
	scs := []Scenario{{Name: "s<1>", File: file, Mesh: m}}
	results := []*trace.Result{
		{Scenario: "s<1>", Name: "one", From: "a", To: "http://a.default.svc.cluster.local:8080/", Result: outcome.OK, Status: 200,
			Wire: []outcome.Wire{outcome.MTLS}, Peer: "spiffe://cluster.local/ns/default/sa/a", Verdict: outcome.Pass,
			Expected: &trace.Expected{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS}},
			Hops: []trace.Hop{{From: "default/a", To: "default/a", Dst: "10.0.0.2:8080", Wire: outcome.MTLS,
				Layers:  []trace.Layer{{Kind: "tls", Version: "TLSv1.3", SNI: "outbound_.8080_._.a.default.svc.cluster.local", PeerVerified: true, Peer: "spiffe://cluster.local/ns/default/sa/a"}},
				Sources: []string{"capture:default/a"}}}},
		{Scenario: "s<1>", Name: "two", From: "a", To: "https://a.example.com/", Via: "gw", Result: outcome.TLSError,
			Wire: []outcome.Wire{outcome.TLS}, Peer: outcome.PeerNone, Reason: `<script>alert("x")</script>`, Verdict: outcome.Fail,
			Expected: &trace.Expected{Result: outcome.OK}, Mismatches: []string{"result: want ok, got tls-error"},
			Artifacts: "/tmp/art/s", Hops: []trace.Hop{{From: "default/a", To: "default/gw", Dst: "10.0.0.3:443", Wire: "tls"}}},
		{Scenario: "s<1>", Name: "three", From: "a", To: "http://a.default.svc.cluster.local:8080/x", Result: outcome.Reset,
			Wire: []outcome.Wire{outcome.None}, Verdict: outcome.Report},
	}
	var b bytes.Buffer
	if err := WriteReport(&b, scs, results, ReportInfo{Started: time.Unix(0, 0), Duration: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", "<style>",
		"s&lt;1&gt;",             // scenario name, escaped
		`<table class="matrix">`, // the matrix
		"http://a.default.svc.cluster.local:8080</th>", // column: host:port, same for both paths
		"https://a.example.com:443 via gw</th>",        // column with the gateway dialled
		`class="cell pass-ok"`, `class="cell fail"`, `class="cell report-blocked"`,
		`<span class="lock">mTLS</span>`,
		`id="s0-c1" open`, // a failed check's trace is open
		"TLSv1.3", "client cert verified: spiffe://cluster.local/ns/default/sa/a",
		"/tmp/art/s",
		"3 checks in 1 scenario: 1 passed, 1 failed, 1 reported",
		// the index of failed checks, at the top, links to the trace
		`<h2 id="failed">1 failed check</h2>`, `<a href="#s0-c1"><b>s&lt;1&gt;/two</b></a>`,
		// the bundle's YAML
		"kind: Check\nmetadata: {name: two}",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if i, j := strings.Index(page, `id="failed"`), strings.Index(page, `<table class="matrix">`); i < 0 || i > j {
		t.Errorf("the failed-check index is not above the first scenario")
	}
	for _, bad := range []string{"<script", "<link", " src=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report contains %q: it must be self-contained and escape its input", bad)
		}
	}
	// Both checks to a:8080 share a row and a column: one matrix row for "a".
	if n := strings.Count(page, `<tr><th class="mono">a</th>`); n != 1 {
		t.Errorf("%d matrix rows for source a, want 1", n)
	}
}

func TestWriteReportCountsMismatch(t *testing.T) {
	m, err := mesh.Parse("s.yaml", []byte(reportBundle))
	if err != nil {
		t.Fatal(err)
	}
	err = WriteReport(&bytes.Buffer{}, []Scenario{{Name: "s", Mesh: m}}, []*trace.Result{{Name: "one"}}, ReportInfo{})
	if err == nil {
		t.Fatal("3 declared checks and 1 result: want an error, not a wrong matrix")
	}
}
