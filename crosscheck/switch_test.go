package crosscheck

import (
	"context"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
)

// TestLiveSwitchACKs repeats, on one set of pods, the pushes that once left
// a proxy never ACKing CDS under istiod's config: the sidecar matrix rows
// whose clusters and endpoints both change (auto mTLS STRICT to DISABLE
// rewrites the clusters' TLS and the endpoints' tlsMode), under istiod's
// config and across control-plane switches. istiod's EDS clusters wait for
// endpoints forever; before the xDS server answered a warming cluster's
// EDS request ("Cluster warming", xds/track.go) the first STRICT-to-DISABLE
// push failed in most runs.
func TestLiveSwitchACKs(t *testing.T) {
	oracle := oracleForTest(t)
	scs, err := harness.LoadScenarios("../bench/matrix/5-strict-auto.yaml", "../bench/matrix/6-disable-auto.yaml", "../bench/matrix/3-disable-disable.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := harness.New(t, scs[0].Mesh)
	istio := IstiodGenerator(oracle)
	for round := range 3 {
		for _, gen := range []harness.ConfigGenerator{istio, nil} {
			// A bound on a failure only: a push that is not ACKed in
			// time explains itself (the proxy's xDS and Envoy state).
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			if err := rt.SetConfigGenerator(ctx, gen); err != nil {
				cancel()
				t.Fatalf("round %d: switching control plane: %v", round, err)
			}
			for _, s := range scs {
				if err := rt.Apply(ctx, s.Mesh); err != nil {
					cancel()
					t.Fatalf("round %d, %s: %v", round, s.Name, err)
				}
			}
			cancel()
		}
	}
}
