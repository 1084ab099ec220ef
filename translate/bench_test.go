package translate

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
)

// bigMesh is a generated mesh of n sidecar workloads spread over 10
// namespaces, each with an HTTP and a TCP port and so an implied Service
// with two ports, under a mesh-wide STRICT PeerAuthentication, a "*"
// DestinationRule and one host DestinationRule per namespace: the config a
// sidecar without a Sidecar resource sees in a large cluster.
func bigMesh(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: svc%d, namespace: ns%d}\nspec:\n  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]\n", i, i%10)
	}
	b.WriteString("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n")
	b.WriteString("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: default, namespace: istio-system}\nspec:\n  host: \"*\"\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n")
	for ns := 0; ns < 10; ns++ {
		fmt.Fprintf(&b, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc%d, namespace: ns%d}\nspec:\n  host: svc%d.ns%d.svc.cluster.local\n  trafficPolicy:\n    tls: {mode: DISABLE}\n", ns, ns, ns, ns)
	}
	return b.String()
}

// BenchmarkTranslate1000Services: ns/op and allocs/op are one Translate of
// one sidecar's full config (1,000 services, 2,000 service ports) after the
// mesh was parsed and the proxy's certificates issued, the steady state of a
// push. Figures, not assertions: see BENCHMARKS.md.
func BenchmarkTranslate1000Services(b *testing.B) {
	m, err := mesh.Parse("bench-1000.yaml", []byte(bigMesh(1000)))
	if err != nil {
		b.Fatal(err)
	}
	set, err := certs.NewSet()
	if err != nil {
		b.Fatal(err)
	}
	// A /16: 1,000 workloads do not fit the harness's /24.
	env := &Env{Addrs: m.AddressPlan(netip.MustParsePrefix("10.90.0.0/16")), Certs: certs.NewStore(set)}
	proxy := m.Workloads[0]
	// Issue the proxy's certificates once, as a running mesh has.
	res, err := Translate(m, proxy, env)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(m, proxy, env); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: b.Loop's first call resets user metrics.
	b.ReportMetric(float64(len(res.Clusters)), "clusters")
	b.ReportMetric(float64(len(res.Listeners)), "listeners")
}
