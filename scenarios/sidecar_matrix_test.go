package scenarios

import (
	"context"
	"testing"

	"github.com/meshtls/meshtls/harness"
)

// The sidecar outcome matrix: Istio's own reachability test, replayed on
// real proxies. Its 8 rows are the bundles in bench/matrix/ (one mesh-wide
// PeerAuthentication and DestinationRule for host "*" per file, with the
// expectation of every call and the Istio source it comes from in each
// file), the same files `make bench` times: {sidecar, naked} clients x
// {sidecar, naked} servers on an HTTP port and a TCP port, 64 checks.
// Source: tests/integration/security/reachability_test.go and
// tests/integration/security/testdata/reachability/*.tmpl (istio/istio).
//
//	go test ./scenarios/ -run 'TestSidecarMatrix/1-strict'
func TestSidecarMatrix(t *testing.T) {
	const cite = "tests/integration/security/reachability_test.go, tests/integration/security/testdata/reachability/*.tmpl"
	scs, err := harness.LoadScenarios("../bench/matrix")
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, scs[0].Mesh)
	for _, s := range scs {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), rowTimeout)
			t.Cleanup(cancel)
			if err := rt.Apply(ctx, s.Mesh); err != nil {
				t.Fatalf("pushing %s: %v", s.File, err)
			}
			r := row{name: s.Name, cite: cite + "; " + s.File}
			for _, mc := range s.Mesh.Checks {
				c := check{name: mc.Name, from: mc.From, to: mc.To, via: mc.Via, tls: mc.TLS, want: *mc.Expect}
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					runCheck(t, ctx, rt, r, c)
				})
			}
		})
	}
}
