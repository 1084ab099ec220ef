package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// Rotating a workload certificate is an SDS push: the next connection
// presents the new certificate, and b's sidecar logs its serial. A TCP port
// makes every call a new upstream connection (HTTP would reuse a pooled
// one, which keeps the certificate it was opened with, as in Istio).
func TestRotateWorkloadCertificate(t *testing.T) {
	m, err := mesh.Parse("rotate.yaml", []byte(`
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec: {ports: [{name: tcp, port: 9000}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _ := rt.Pod("a")
	b, _ := rt.Pod("b")

	// seenSerial calls b and returns the client serial b's sidecar verified.
	seenSerial := func() string {
		t.Helper()
		mark := b.Logs.Len()
		res, err := a.Agent.Call(ctx, pod.CallRequest{URL: "tcp://b:9000"})
		if err != nil || res.Result != outcome.OK {
			t.Fatalf("a -> b: %v %+v", err, res)
		}
		line, err := b.Logs.WaitFor(ctx, mark, func(l string) bool {
			e, err := accesslog.Parse([]byte(l))
			return err == nil && e.Direction == accesslog.DirectionInbound
		})
		if err != nil {
			t.Fatalf("no inbound access log line on b: %v", err)
		}
		e, err := accesslog.Parse([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return strings.ToLower(e.DownstreamPeerCertSerial)
	}

	old, err := rt.Certs().Workload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := seenSerial(); got != certs.Serial(old.Cert) {
		t.Fatalf("before rotation b saw serial %q, want a's %q", got, certs.Serial(old.Cert))
	}
	fresh, err := rt.RotateWorkload(ctx, "default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if certs.Serial(fresh.Cert) == certs.Serial(old.Cert) {
		t.Fatal("rotation kept the serial")
	}
	if got := seenSerial(); got != certs.Serial(fresh.Cert) {
		t.Fatalf("after rotation b saw serial %q, want the new %q (old %q)", got, certs.Serial(fresh.Cert), certs.Serial(old.Cert))
	}
}
