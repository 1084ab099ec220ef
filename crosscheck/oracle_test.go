package crosscheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshtls/meshtls/bench"
)

// A mesh too big for a /24 (200 pods with a Service each) gets the address
// plan of a run's network (mesh.PlanBits): every Service that is not
// headless has a cluster IP, and no two addresses are the same.
func TestLoadBundleAddressPlanFitsTheMesh(t *testing.T) {
	f := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(f, []byte(bench.ScaleBundle(200)), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBundle(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Mesh.Services) < 200 {
		t.Fatalf("%d Services; the test wants more than a /24 holds with the pods", len(b.Mesh.Services))
	}
	seen := map[string]string{}
	for key, a := range b.Addrs {
		if other, ok := seen[a.String()]; ok {
			t.Errorf("%s and %s both have %s", key, other, a)
		}
		seen[a.String()] = key
	}
	for _, s := range b.Mesh.Services {
		if _, ok := b.Addrs[s.VIPKey()]; !ok && !s.Headless() {
			t.Errorf("Service %s/%s has no cluster IP in the oracle's address plan", s.Namespace, s.Name)
		}
	}
}
