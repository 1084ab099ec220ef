package harness

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/xds"
)

// pushMesh is n sidecar pods w0..w(n-1) plus extra config.
func pushMesh(t *testing.T, n int, extra string) *mesh.Mesh {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: w%d, labels: {app: w%d}}\nspec:\n  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]\n", i, i)
	}
	return parseBundle(t, b.String()+extra)
}

func pa(name, ns, selector, mode string) string {
	sel := ""
	if selector != "" {
		sel = "  selector: {matchLabels: {app: " + selector + "}}\n"
	}
	return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n" + sel + "  mtls: {mode: " + mode + "}\n"
}

// The push path without containers: translate every proxy into an xDS
// server (no proxy connects), then change the config as Apply does and
// count which proxies were translated again and given a new version.
func TestPushOnlyAffectedProxies(t *testing.T) {
	set, err := certs.NewSet()
	if err != nil {
		t.Fatal(err)
	}
	start := pushMesh(t, 5, pa("default", "istio-system", "", "STRICT"))
	r := &Runtime{xds: xds.NewServer(), certs: certs.NewStore(set), pods: map[string]*Pod{}}
	t.Cleanup(r.xds.Stop)
	if err := r.setMesh(start); err != nil {
		t.Fatal(err)
	}
	r.addrs = start.AddressPlan(netip.MustParsePrefix("172.30.5.0/24"))
	// apply is Apply without the wait for ACKs (no proxy is connected).
	apply := func(extra string) (PushStats, map[string]bool) {
		t.Helper()
		m := pushMesh(t, 5, extra)
		m.Workloads = r.mesh.Workloads
		if err := r.setMesh(m); err != nil {
			t.Fatal(err)
		}
		r.lastPush = PushStats{}
		before := map[string]string{}
		for id, c := range r.configs {
			before[id] = c.version
		}
		versions, err := r.push(t.Context(), proxies(r.mesh))
		if err != nil {
			t.Fatal(err)
		}
		changed := map[string]bool{}
		for id, v := range versions {
			if v != before[id] {
				changed[id] = true
			}
		}
		return r.lastPush, changed
	}
	if st, _ := apply(pa("default", "istio-system", "", "STRICT")); st != (PushStats{Proxies: 5, Translated: 5, Pushed: 5}) {
		t.Fatalf("first push: %+v, want every proxy translated and pushed", st)
	}
	for _, c := range []struct {
		name  string
		extra string
		want  PushStats
		only  string // the one proxy pushed, when one
	}{
		{"the same config again", pa("default", "istio-system", "", "STRICT"), PushStats{5, 0, 0}, ""},
		{"a policy for one workload", pa("default", "istio-system", "", "STRICT") + pa("w3", "default", "w3", "PERMISSIVE"), PushStats{5, 1, 1}, "default/w3"},
		{"that policy changed", pa("default", "istio-system", "", "STRICT") + pa("w3", "default", "w3", "STRICT"), PushStats{5, 1, 1}, "default/w3"},
		{"a mesh-wide change", pa("default", "istio-system", "", "PERMISSIVE") + pa("w3", "default", "w3", "STRICT"), PushStats{5, 5, 4}, ""},
		// DISABLE on one workload changes every client's endpoint
		// metadata for it under auto mTLS (translate/cluster.go).
		{"one workload DISABLE", pa("default", "istio-system", "", "PERMISSIVE") + pa("w3", "default", "w3", "DISABLE"), PushStats{5, 5, 5}, ""},
	} {
		st, changed := apply(c.extra)
		if st != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, st, c.want)
		}
		if c.only != "" && (len(changed) != 1 || !changed[c.only]) {
			t.Errorf("%s: new versions for %v, want %s only", c.name, changed, c.only)
		}
	}
}

// A push that replaces the server's inbound filter chains (mesh-wide
// STRICT, then PERMISSIVE, and back) closes the connections the old chains
// served before Apply returns, so the check right after never meets a
// pooled connection that the drain then resets.
func TestApplyThenCheckAfterInboundChange(t *testing.T) {
	liveOnly(t)
	strict := parseBundle(t, reliabilityTwoPods+pa("default", "istio-system", "", "STRICT"))
	permissive := parseBundle(t, reliabilityTwoPods+pa("default", "istio-system", "", "PERMISSIVE"))
	rt := startLive(t, strict)
	runCheck(t, rt, checkAB)
	for i := range 20 {
		m := permissive
		if i%2 == 1 {
			m = strict
		}
		if err := rt.Apply(testCtx(t, time.Minute), m); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if st := rt.LastPush(); st.Pushed != 2 { // both inbound listeners change
			t.Errorf("push %d: %+v, want both proxies pushed", i, st)
		}
		// Several calls: the old drain closed the pooled connection at a
		// moment within its drain time, not at once.
		for range 5 {
			runCheck(t, rt, checkAB)
		}
	}
}
