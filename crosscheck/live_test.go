package crosscheck

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
)

// The live differential: every shipped bundle runs on the same pods under
// meshtls's config and under istiod's (served by meshtls's own ADS/SDS
// server), and each check's result, wire and peer must agree unless a live
// allowlist entry explains the difference. Pods start once per set of
// bundles declaring the same workloads, as RunScenarios shares them.
func TestLiveDifferential(t *testing.T) {
	oracle := oracleForTest(t)
	allow, err := LoadAllowlist("allowlist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scs, err := harness.LoadScenarios(shippedBundles(t)...)
	if err != nil {
		t.Fatal(err)
	}
	var groups [][]harness.Scenario
	for _, s := range scs {
		if len(s.Mesh.Checks) == 0 {
			s.Mesh.Explore() // as `meshtls run` does a bundle without checks
		}
		i := 0
		for i < len(groups) && !harness.SameWorkloads(groups[i][0].Mesh, s.Mesh) {
			i++
		}
		if i == len(groups) {
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], s)
	}
	istio := IstiodGenerator(oracle)
	var diffs []Difference
	checks := 0
	for _, g := range groups {
		t.Run(g[0].Name, func(t *testing.T) {
			rt := harness.New(t, g[0].Mesh)
			onIstio := false // which config the pods run now
			for _, s := range g {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				// Two pushes per bundle: its config under the control plane
				// the pods run now, then under the other one.
				if err := rt.Apply(ctx, s.Mesh); err != nil {
					t.Fatalf("%s: push: %v", s.Name, err)
				}
				var res [2][]*trace.Result // meshtls, istio
				for k := range 2 {
					if k == 1 {
						gen := istio
						if onIstio {
							gen = nil
						}
						if err := rt.SetConfigGenerator(ctx, gen); err != nil {
							t.Fatalf("%s: switching control plane: %v", s.Name, err)
						}
						onIstio = !onIstio
					}
					r, err := rt.RunChecks(ctx, s, 4, nil)
					if err != nil {
						t.Fatalf("%s: %v", s.Name, err)
					}
					if onIstio {
						res[1] = r
					} else {
						res[0] = r
					}
				}
				cancel()
				checks += len(res[0])
				diffs = append(diffs, LiveDifferences(filepath.Base(s.File), res[0], res[1], allow)...)
			}
		})
	}
	if t.Failed() {
		return
	}
	var bad []string
	allowed := 0
	for _, d := range diffs {
		if d.Unexplained() {
			bad = append(bad, d.String())
		} else {
			allowed++
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d checks come out differently under istiod's config, not in the live entries of crosscheck/allowlist.yaml (fix the translator, or allowlist with the reason):\n%s", len(bad), strings.Join(bad, "\n"))
	}
	for _, e := range allow.Unused(true) {
		t.Errorf("live allowlist entry %q explains no difference any more: remove it", e.Key)
	}
	t.Logf("%d bundles, %d checks under both control planes: %d differ, %d of them allowed", len(scs), checks, len(diffs), allowed)
}
