package harness

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/mesh"
)

// A run's network is a free slot of the pool: aligned, inside the pool,
// clear of every network the engine has, each slot once.
func TestFreePrefixes(t *testing.T) {
	used := []netip.Prefix{
		netip.MustParsePrefix("172.30.5.0/24"),  // another run's /24
		netip.MustParsePrefix("172.31.0.0/18"),  // a wide one
		netip.MustParsePrefix("172.17.0.0/16"),  // docker0, outside the pool
		netip.MustParsePrefix("172.30.64.0/20"), // another run's /20
	}
	free := freePrefixes(runPool, 20, used)
	// 32 /20s in the /15, minus 172.30.0.0/20 (holds the /24), four in
	// the /18 and 172.30.64.0/20.
	if len(free) != 32-1-4-1 {
		t.Fatalf("%d free /20s, want 26: %v", len(free), free)
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range free {
		if p.Bits() != 20 || p != p.Masked() || !runPool.Contains(p.Addr()) || seen[p] {
			t.Errorf("bad or repeated slot %s", p)
		}
		seen[p] = true
		for _, u := range used {
			if p.Overlaps(u) {
				t.Errorf("slot %s overlaps %s", p, u)
			}
		}
	}
	if got := len(freePrefixes(runPool, 24, nil)); got != 512 {
		t.Errorf("%d /24s in a /15, want 512", got)
	}
	if got := freePrefixes(runPool, 16, []netip.Prefix{netip.MustParsePrefix("172.30.0.0/15")}); len(got) != 0 {
		t.Errorf("a full pool offers %v", got)
	}
}

// A mesh wider than a /16 is refused with the fix, by validate and run
// alike (both size the network with runNetworkBits).
func TestRunNetworkBits(t *testing.T) {
	if bits, err := runNetworkBits(&mesh.Mesh{Workloads: make([]*mesh.Workload, 300)}); err != nil || bits != 23 {
		t.Errorf("300 workloads: /%d, %v; want /23", bits, err)
	}
	_, err := runNetworkBits(&mesh.Mesh{Workloads: make([]*mesh.Workload, 70000)})
	if err == nil || !strings.Contains(err.Error(), "split the bundle") {
		t.Errorf("70,000 workloads: %v, want an error with the fix", err)
	}
}
