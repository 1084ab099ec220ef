package translate

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// snapshotOf puts one proxy's resources into a go-control-plane snapshot.
func snapshotOf(t *testing.T, r *Resources) *cachev3.Snapshot {
	t.Helper()
	byType := map[resource.Type][]types.Resource{}
	for _, l := range r.Listeners {
		byType[resource.ListenerType] = append(byType[resource.ListenerType], l)
	}
	for _, c := range r.Clusters {
		byType[resource.ClusterType] = append(byType[resource.ClusterType], c)
	}
	for _, rc := range r.Routes {
		byType[resource.RouteType] = append(byType[resource.RouteType], rc)
	}
	for _, e := range r.Endpoints {
		byType[resource.EndpointType] = append(byType[resource.EndpointType], e)
	}
	for _, s := range r.Secrets {
		byType[resource.SecretType] = append(byType[resource.SecretType], s)
	}
	snap, err := cachev3.NewSnapshot("1", byType)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// Every proxy of every fixture translates, validates and makes a consistent
// snapshot (every referenced route/endpoint resource present).
func TestFixturesConsistent(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		m := loadFile(t, f)
		env := testEnv(t, m)
		for _, w := range m.Workloads {
			if !w.HasProxy() {
				continue
			}
			t.Run(f+"/"+w.ID(), func(t *testing.T) {
				res, err := Translate(m, w, env)
				if err != nil {
					t.Fatal(err)
				}
				if err := res.Validate(); err != nil {
					t.Fatal(err)
				}
				if err := snapshotOf(t, res).Consistent(); err != nil {
					t.Fatalf("snapshot not consistent: %v", err)
				}
			})
		}
	}
}
