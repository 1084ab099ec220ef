package translate

import (
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// The documented mutual TLS origination at an egress gateway, scenario 36:
// my-nginx is a Service with port 443 only, and the VirtualService sends
// http://my-nginx... on port 80 to the egress gateway; the nginx
// VirtualService has tls routes only.
func translateDocs36(t *testing.T) *Resources {
	t.Helper()
	m := loadFile(t, "../scenarios/testdata/36-docs-egress-gateway-mtls-origination.yaml")
	w, _ := m.Workload("curl")
	res, err := Translate(m, w, testEnv(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func findVhost(t *testing.T, rc *route.RouteConfiguration, name string) *route.VirtualHost {
	t.Helper()
	for _, vh := range rc.VirtualHosts {
		if vh.Name == name {
			return vh
		}
	}
	t.Fatalf("route %s: no virtual host %q; have %v", rc.Name, name, names(rc.VirtualHosts))
	return nil
}

func vhostClusters(vh *route.VirtualHost) []string {
	var out []string
	for _, r := range vh.Routes {
		c := r.GetRoute().GetCluster()
		if wc := r.GetRoute().GetWeightedClusters().GetClusters(); len(wc) > 0 {
			c = wc[0].GetName()
		}
		out = append(out, c)
	}
	return out
}

// On port 80 a VirtualService host that is no service on the port gets a
// virtual host of its own (httproute.go, the port-80 "hack"); a
// VirtualService with no route for the port leaves the service its default
// route (route.go, buildSidecarVirtualHostsForVirtualService).
func TestVirtualServiceHostsWithoutService(t *testing.T) {
	res := translateDocs36(t)
	rc80 := findRoute(t, res, OutboundRouteName(80))
	vh := findVhost(t, rc80, "my-nginx.mesh-external.svc.cluster.local:80")
	equal(t, "domains", vh.Domains, []string{"my-nginx.mesh-external.svc.cluster.local", "my-nginx.mesh-external.svc.cluster.local:80"})
	equal(t, "clusters", vhostClusters(vh), []string{"outbound|443|nginx|istio-egressgateway.istio-system.svc.cluster.local"})
	// nginx.example.com's VirtualService has only tls routes: default route.
	equal(t, "nginx.example.com:80", vhostClusters(findVhost(t, rc80, "nginx.example.com:80")), []string{"outbound|80||nginx.example.com"})
	// On 443 my-nginx is a service; the VirtualService's http routes are for
	// port 80 (mesh) and the gateway, so the service keeps its default route.
	rc443 := findRoute(t, res, OutboundRouteName(443))
	equal(t, "my-nginx:443", vhostClusters(findVhost(t, rc443, "my-nginx.mesh-external.svc.cluster.local:443")), []string{"outbound|443||my-nginx.mesh-external.svc.cluster.local"})
}

// An auto-detected service on a port whose listener runs a TLS inspector (a
// tls route's SNI chain): TLS reaches its TCP chain, not the http chain the
// ClientHello's http/1.1 ALPN would match (listener.go: raw_buffer on the
// http chains of auto ports).
func TestAutoPortTLSWithTLSInspector(t *testing.T) {
	res := translateDocs36(t)
	l := findListener(t, res, OutboundListenerName(443))
	fc := findChain(t, l, "outbound|443||my-nginx.mesh-external.svc.cluster.local|tls")
	if fc.FilterChainMatch.TransportProtocol != transportTLS || len(fc.FilterChainMatch.PrefixRanges) != 1 {
		t.Errorf("match = %v", fc.FilterChainMatch)
	}
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|443||my-nginx.mesh-external.svc.cluster.local" {
		t.Errorf("cluster = %q", got)
	}
	// Without a TLS inspector (scenario 16's auto ports) no tls chains.
	m := loadFile(t, "../scenarios/testdata/16-cluster-shop.yaml")
	w, _ := m.Workload("shop/frontend")
	res, err := Translate(m, w, testEnv(t, m))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.Listeners {
		if !strings.HasPrefix(l.Name, "0.0.0.0_") {
			continue
		}
		for _, fc := range l.FilterChains {
			if strings.HasSuffix(fc.Name, "|tls") {
				t.Errorf("%s: chain %s without a TLS inspector", l.Name, fc.Name)
			}
		}
	}
}
