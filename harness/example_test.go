package harness_test

import (
	"fmt"
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// twoPods is a bundle of two workloads with sidecars and a pod without one.
const twoPods = `apiVersion: meshtls.dev/v1alpha1
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

// A test starts a mesh from a bundle and makes calls with expectations,
// like httptest: the mesh is removed when the test ends.
func ExampleRuntime_Call() {
	var t *testing.T // the test's *testing.T
	m, err := mesh.Parse("bundle.yaml", []byte(twoPods))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, m)
	// No PeerAuthentication, no DestinationRule: auto mTLS.
	rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/",
		harness.ExpectResult(outcome.OK),
		harness.ExpectWire(outcome.MTLS),
		harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	// A pod without sidecar speaks plaintext, which PERMISSIVE accepts.
	rt.Call(t, "plain", "http://b.default.svc.cluster.local:8080/",
		harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext))
}

// ApplyConfig pushes Istio config to the running pods and waits until
// every proxy has ACKed it; each call replaces the config of the one before.
func ExampleRuntime_ApplyConfig() {
	var t *testing.T // the test's *testing.T
	m, err := mesh.Parse("bundle.yaml", []byte(twoPods))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, m)
	rt.ApplyConfig(t, `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`)
	// STRICT: the pod without sidecar is refused, whatever the form.
	rt.Call(t, "plain", "http://b.default.svc.cluster.local:8080/", harness.ExpectNotOK())
	rt.ApplyConfig(t, "") // back to the bundle's own config
}

// A check built in Go is validated as a Check document of a bundle:
// Options composes expectations several calls share.
func ExampleBuildCheck() {
	m, err := mesh.Parse("bundle.yaml", []byte(twoPods))
	if err != nil {
		panic(err)
	}
	mtlsOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS))
	c, err := harness.BuildCheck(m, "a-to-b", "a", "http://b.default.svc.cluster.local:8080/", mtlsOK)
	fmt.Println(c.From, "->", c.To, c.Expect.Result, c.Expect.Wire, err)

	_, err = harness.BuildCheck(m, "typos", "c", "htp://b/", harness.ExpectResult("fine"))
	fmt.Println(err)
	// Output:
	// a -> http://b.default.svc.cluster.local:8080/ ok [mtls] <nil>
	// Check default/typos: spec.from: workload "c" not found in the bundle
	// Check default/typos: spec.to: unsupported scheme "htp" (allowed: http, https, tcp, tls)
	// Check default/typos: spec.expect.result: unknown value "fine" (allowed: ok, http-NNN, reset, refused, timeout, tls-error, fail)
}
