package harness

import (
	"slices"
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
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  sidecar: false
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
	// Options compose; WithTLS trusts the default CAs as a bundle's check does.
	okTLS := Options(ExpectResult(outcome.OK), ExpectWire(outcome.TLS), ExpectHops(mesh.HopExpect{TLSVersion: "TLSv1.3"}))
	c, err = r.CallCheck("tls", "a", "https://b.default.svc.cluster.local:8080/", WithTLS(mesh.CheckTLS{}), okTLS, ExpectServedBy("b"))
	if err != nil || c.Expect.Result != outcome.OK || len(c.Expect.Hops) != 1 || c.Expect.ServedBy != "b" || !slices.Equal(c.TLS.CA, mesh.DefaultCheckCAs) {
		t.Fatalf("composed options: %+v %+v, %v", c.Expect, c.TLS, err)
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
// ApplyConfig pushes STRICT (a pod without sidecar is then refused) and an
// empty config takes it back.
func TestCall(t *testing.T) {
	m, err := mesh.Parse("call.yaml", []byte(callBundle))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(t, m)
	const toB = "http://b.default.svc.cluster.local:8080/"
	res := rt.Call(t, "a", toB,
		ExpectResult(outcome.OK), ExpectWire(outcome.MTLS), ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	if res.Verdict != outcome.Pass {
		t.Fatalf("verdict %s", res.Verdict)
	}
	plainOK := Options(ExpectResult(outcome.OK), ExpectWire(outcome.Plaintext), ExpectPeer(outcome.PeerNone))
	rt.Call(t, "plain", toB, plainOK)

	// https://istio.io/latest/docs/reference/config/security/peer_authentication/ (STRICT)
	rt.ApplyConfig(t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`)
	if res := rt.Call(t, "plain", toB, ExpectNotOK()); res.Verdict != outcome.Pass {
		t.Fatalf("STRICT applied: plain -> b %s, want refused", res.Result)
	}
	rt.Call(t, "a", toB, ExpectResult(outcome.OK), ExpectWire(outcome.MTLS))

	rt.ApplyConfig(t, "")
	rt.Call(t, "plain", toB, plainOK)
}
