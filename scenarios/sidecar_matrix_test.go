package scenarios

import (
	"context"
	"testing"
	"time"

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
			// Whole bundles (their workloads are the same): rt.Apply, and
			// each bundle's own Check documents.
			ctx, cancel := context.WithTimeout(t.Context(), pushTimeout)
			defer cancel()
			if err := rt.Apply(ctx, s.Mesh); err != nil {
				t.Fatalf("pushing %s: %v", s.File, err)
			}
			for _, c := range s.Mesh.Checks {
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					if res := rt.Check(t, s.Name, c); !res.Passed() {
						t.Log("source: " + cite + "; " + s.File)
					}
				})
			}
		})
	}
}

// pushTimeout bounds one push and every proxy's ACK.
const pushTimeout = 2 * time.Minute
