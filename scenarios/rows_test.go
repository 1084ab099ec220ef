package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
)

// The live suite is rows of data: a row is Istio config pushed to pods that
// are already running (rt.ApplyConfig), plus the calls to make under it and
// what each must show (rt.Call with the harness's expectations). A test
// function starts its pods once (harness.New), so adding a case is adding a
// row.
//
// Run one group or one row with the usual filters, e.g.
//
//	go test ./scenarios/ -run 'TestSidecarMatrix/1-strict'

// row is one configuration and the calls made under it.
type row struct {
	name string
	// cite is the Istio doc URL or istio/istio source path the expectations
	// come from; it is printed when a call's expectation does not hold.
	cite   string
	config string // Istio config (and Services) on top of the test's workloads: rt.ApplyConfig
	// setup, when set, runs before the row's push, e.g. to swap a workload
	// certificate in rt.Certs() (the push then carries the new secret).
	setup func(t *testing.T, rt *harness.Runtime)
	calls []callSpec
}

// callSpec is one call of a row: rt.Call's arguments.
type callSpec struct {
	name, from, to string
	opts           []harness.CallOption
}

// call is a row's call named name, from a workload (name or namespace/name)
// to a URL (http, https, tcp, tls), with the harness's options: what it
// expects (harness.ExpectResult, ExpectWire, ...), harness.Via a gateway,
// harness.WithTLS.
//
// harness.ExpectNotOK is for refusals whose form is a race, e.g. a client
// certificate rejected after a TLS 1.3 client already considers its
// handshake done: a tls-error when the alert arrives before the request is
// written, a reset when after.
func call(name, from, to string, opts ...harness.CallOption) callSpec {
	return callSpec{name: name, from: from, to: to, opts: opts}
}

func sni(s string) *string { return &s }

// runRows starts the workloads once and runs the rows in order, each as a
// subtest that pushes its config and then makes its calls in parallel
// (calls are independent: each one's evidence is matched by its own
// connections).
func runRows(t *testing.T, workloads string, rows []row) {
	t.Helper()
	rt := harness.New(t, parse(t, workloads))
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.setup != nil {
				r.setup(t, rt)
			}
			rt.ApplyConfig(t, r.config)
			for _, c := range r.calls {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if res := rt.Call(t, c.from, c.to, c.opts...); !res.Passed() {
						t.Log("source: " + r.cite)
					}
				})
			}
		})
	}
}

const clientID = "spiffe://cluster.local/ns/default/sa/client"

// meshPA is a mesh-wide PeerAuthentication (root namespace, no selector).
func meshPA(mode string) string {
	return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: ` + mode + `}
---
`
}

// meshDR is a DestinationRule for every host, as the reachability test
// installs it in the root namespace.
func meshDR(mode string) string {
	return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: default, namespace: istio-system}
spec:
  host: "*"
  trafficPolicy:
    tls: {mode: ` + mode + `}
---
`
}
