package harness

import (
	"strings"
	"testing"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

const callBundle = `apiVersion: meshtls.dev/v1alpha1
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
`

// Checks built in Go are validated like checks from YAML.
func TestCallCheckValidates(t *testing.T) {
	m, err := mesh.Parse("call.yaml", []byte(callBundle))
	if err != nil {
		t.Fatal(err)
	}
	r := &Runtime{mesh: m}
	c, err := r.CallCheck("ok", "a", "http://b.default.svc.cluster.local:8080/",
		ExpectResult(outcome.OK), ExpectWire(outcome.MTLS), ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	if err != nil || c.Expect.Result != outcome.OK || len(c.Expect.Wire) != 1 || c.Expect.Peer == "" {
		t.Fatalf("valid call: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		from, to string
		opts     []CallOption
		want     string
	}{
		{"nosuch", "http://b.default.svc.cluster.local:8080/", nil, `spec.from: workload "nosuch" not found`},
		{"a", "http://b.default.svc.cluster.local:8080/", []CallOption{WithTLS(mesh.CheckTLS{ClientCert: "client"})}, "spec.tls"},
		{"a", "http://b.default.svc.cluster.local:8080/", []CallOption{ExpectResult("fine")}, "spec.expect.result"},
		{"a", "http://b.default.svc.cluster.local:8080/", []CallOption{Via("b")}, "spec.via"},
	} {
		if _, err := r.CallCheck("bad", tc.from, tc.to, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// Call runs a real call and compares it: auto mTLS between two sidecars.
func TestCall(t *testing.T) {
	m, err := mesh.Parse("call.yaml", []byte(callBundle))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(t, m)
	res := rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/",
		ExpectResult(outcome.OK), ExpectWire(outcome.MTLS), ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	if res.Verdict != outcome.Pass {
		t.Fatalf("verdict %s", res.Verdict)
	}
}
