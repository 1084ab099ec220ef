package harness_test

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
)

// Each classification of the trace, proven on a purpose-built call: the
// wire entries come from captures, access logs and the echo app's report,
// not from config.
func TestEvidenceClassifications(t *testing.T) {
	const workloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports:
  - {name: http, port: 8080}
  - {name: tcp, port: 9000}
  - {name: tls, port: 8443, tls: true}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec: {sidecar: false, ports: [{name: http, port: 8080}, {name: tls, port: 8443, tls: true}]}
`
	// DR ISTIO_MUTUAL toward a workload without sidecar fails the handshake:
	// tests/integration/security/reachability_test.go ("naked" servers).
	const drToPlain = `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: plain, namespace: default}
spec: {host: plain.default.svc.cluster.local, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
`
	rows := []struct {
		name, config, check string
	}{
		{"plaintext", "", `{from: plain, to: "http://b:8080/", expect: {result: ok, wire: [plaintext], peer: none}}`},
		{"app-tls-passed-through", "", `{from: plain, to: "tls://b:8443", tls: {ca: [app]}, expect: {result: ok, wire: [tls], peer: none}}`},
		{"sidecar-mtls-http", "", `{from: a, to: "http://b:8080/", expect: {result: ok, wire: [mtls], peer: "spiffe://cluster.local/ns/default/sa/a"}}`},
		{"sidecar-mtls-tcp", "", `{from: a, to: "tcp://b:9000", expect: {result: ok, wire: [mtls], peer: "spiffe://cluster.local/ns/default/sa/a"}}`},
		{"app-tls-inside-mtls", "", `{from: a, to: "tls://b:8443", tls: {ca: [app]}, expect: {result: ok, wire: [mtls+tls], peer: "spiffe://cluster.local/ns/default/sa/a"}}`},
		{"failed-handshake", drToPlain, `{from: a, to: "http://plain:8080/", expect: {result: http-503, reason: UF}}`},
	}
	base, err := mesh.Parse("evidence.yaml", []byte(workloads))
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, base)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			m, err := mesh.Parse(r.name+".yaml", []byte(workloads+r.config+`
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: `+r.name+`}
spec: `+r.check+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.Apply(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			rt.Check(t, "evidence", m.Checks[0])
		})
	}
}
