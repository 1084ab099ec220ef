package harness_test

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// A test starts a mesh from a bundle and makes calls with expectations,
// like httptest: the mesh is removed when the test ends.
func ExampleRuntime_Call() {
	var t *testing.T // the test's *testing.T
	m, err := mesh.Parse("bundle.yaml", []byte(`apiVersion: meshtls.dev/v1alpha1
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
`))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, m)
	// No PeerAuthentication, no DestinationRule: auto mTLS.
	rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/",
		harness.ExpectResult(outcome.OK),
		harness.ExpectWire(outcome.MTLS),
		harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/a"))
	// A plain pod outside the mesh would be refused under STRICT:
	//	rt.Call(t, "plain", "http://b.default.svc.cluster.local:8080/", harness.ExpectNotOK())
}
