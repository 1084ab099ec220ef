package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// VirtualService tls routes on sidecars (gateways: [mesh]): on a TLS-class
// outbound port the sidecar reads the SNI and sends each connection whose
// SNI a route matches to that route's destinations, bytes untouched. This is
// how Istio's egress-gateway HTTPS pattern sends a pod's own TLS to the
// egress gateway. Source: pilot/pkg/networking/core/tls.go
// (buildSidecarOutboundTLSFilterChainOpts, matchTLS).

// sidecarTLSMatches are the tls-route matches of vs that apply to this
// sidecar on port (matchTLS: gateways include mesh or are unset, the
// sidecar's labels and namespace, the port), each once per SNI set.
func (b *builder) sidecarTLSMatches(vs *networking.VirtualService, port uint32) (matches []tlsMatch) {
	if vs == nil {
		return nil
	}
	res := vsName(vs)
	seen := map[string]bool{}
	for i, tr := range vs.Spec.GetTls() {
		if len(tr.GetRoute()) == 0 {
			continue
		}
		for j, m := range tr.GetMatch() {
			if len(m.GetGateways()) > 0 && !slices.Contains(m.GetGateways(), "mesh") {
				continue
			}
			if !subsetMatches(m.GetSourceLabels(), b.proxy.Labels) {
				continue
			}
			if m.GetPort() != 0 && m.GetPort() != port {
				continue
			}
			if m.GetSourceNamespace() != "" && m.GetSourceNamespace() != b.proxy.Namespace {
				continue
			}
			if len(m.GetDestinationSubnets()) > 0 {
				// They replace the service's addresses in the chain match;
				// meshtls does not model addresses outside its network.
				b.unsupported(res, fmt.Sprintf("spec.tls[%d].match[%d].destinationSubnets", i, j))
				continue
			}
			key := strings.Join(m.GetSniHosts(), ",")
			if seen[key] {
				continue // Istio keeps the first match with these SNI hosts
			}
			seen[key] = true
			matches = append(matches, tlsMatch{route: tr, index: i, snis: m.GetSniHosts()})
		}
	}
	return matches
}

type tlsMatch struct {
	route *networkingapi.TLSRoute
	index int
	snis  []string
}

func (b *builder) hasSidecarTLSRoute(vs *networking.VirtualService, port uint32) bool {
	return len(b.sidecarTLSMatches(vs, port)) > 0
}

// sidecarTLSRouteChains: one chain per applicable match, on its sniHosts
// (and the service's addresses when it has any), to the route's weighted
// destinations. SNI names already claimed on the listener by a chain
// without addresses are left out (Envoy refuses two chains matching the same
// name; the first service, in host order, keeps it).
func (b *builder) sidecarTLSRouteChains(vs *networking.VirtualService, port uint32, ips []netip.Prefix, claimed map[string]bool, logs []*accesslog.AccessLog) []*listener.FilterChain {
	var out []*listener.FilterChain
	for _, m := range b.sidecarTLSMatches(vs, port) {
		var snis []string
		for _, s := range m.snis {
			if len(ips) > 0 || !claimed[s] {
				snis = append(snis, s)
			}
		}
		if len(snis) == 0 {
			continue
		}
		slices.Sort(snis)
		if len(ips) == 0 {
			for _, s := range snis {
				claimed[s] = true
			}
		}
		w := b.routeWeights(vs, fmt.Sprintf("spec.tls[%d]", m.index), m.route.GetRoute(), port)
		fc := &listener.FilterChain{
			Name:             fmt.Sprintf("%s|tls[%d]|%s", vsName(vs), m.index, strings.Join(snis, ",")),
			FilterChainMatch: &listener.FilterChainMatch{ServerNames: snis, TransportProtocol: transportTLS, PrefixRanges: cidrs(ips)},
		}
		fc.Filters = []*listener.Filter{tcpProxyTo(fc.Name, w, logs)}
		out = append(out, fc)
	}
	return out
}

// routeWeights are the clusters of tcp or tls route destinations, each
// weight 1 when unset (networkfilter.go, buildOutboundNetworkFilters).
func (b *builder) routeWeights(vs *networking.VirtualService, path string, ds []*networkingapi.RouteDestination, port uint32) []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight {
	var w []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight
	for k, d := range ds {
		name := b.destinationCluster(vs, fmt.Sprintf("%s.route[%d].destination", path, k), d.GetDestination(), port)
		wt := uint32(d.GetWeight())
		if wt == 0 {
			wt = 1
		}
		w = append(w, &tcpproxy.TcpProxy_WeightedCluster_ClusterWeight{Name: name, Weight: wt})
	}
	return w
}

// tcpProxyTo proxies to the one cluster of w, or to all of them weighted.
func tcpProxyTo(statPrefix string, w []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight, logs []*accesslog.AccessLog) *listener.Filter {
	if len(w) == 1 {
		return tcpProxyFilter(statPrefix, w[0].Name, nil, logs)
	}
	return tcpProxyFilter(statPrefix, "", w, logs)
}
