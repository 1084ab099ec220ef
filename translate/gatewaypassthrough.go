package translate

import (
	"fmt"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	snicluster "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	networkingapi "istio.io/api/networking/v1alpha3"

	"github.com/meshtls/meshtls/mesh"
)

// passthroughChains: one chain per VirtualService tls route, matched on its
// sniHosts within the server's hosts, forwarding the bytes untouched
// (pilot/pkg/networking/core/gateway.go, createGatewayTCPFilterChainOpts for PASSTHROUGH;
// networkfilter.go / tls.go buildSidecarOutboundTLSFilterChainOpts-like matching).
func (b *builder) passthroughChains(s *gwServer, logs []*accesslogv3.AccessLog) []*listener.FilterChain {
	port := s.port()
	var out []*listener.FilterChain
	for _, vh := range b.boundVirtualServices(s) {
		res := vsName(vh.vs)
		for i, tr := range vh.vs.Spec.GetTls() {
			path := fmt.Sprintf("spec.tls[%d]", i)
			for j, m := range tr.GetMatch() {
				if m.GetPort() != 0 && m.GetPort() != port {
					continue
				}
				if !mesh.MatchGateways(m.GetGateways(), vh.vs.Namespace, s.ref) {
					continue
				}
				if len(m.GetDestinationSubnets()) > 0 {
					b.unsupported(res, fmt.Sprintf("%s.match[%d].destinationSubnets", path, j))
				}
				if len(m.GetSourceLabels()) > 0 {
					b.unsupported(res, fmt.Sprintf("%s.match[%d].sourceLabels", path, j))
				}
				var snis []string
				for _, sni := range m.GetSniHosts() {
					for _, sh := range s.hosts() {
						if h, ok := hostMatch(sni, sh.host); ok && !slices.Contains(snis, h) {
							snis = append(snis, h)
						}
					}
				}
				if len(snis) == 0 {
					continue
				}
				slices.Sort(snis)
				if slices.Contains(snis, "*") {
					snis = nil
				}
				w := b.routeWeights(vh.vs, path, tr.GetRoute(), port)
				if len(w) == 0 {
					continue
				}
				fc := &listener.FilterChain{
					Name:             fmt.Sprintf("%s|%s|%s|%s", s.ref, s.srv.GetPort().GetName(), res, strings.Join(snis, ",")),
					FilterChainMatch: &listener.FilterChainMatch{ServerNames: snis, TransportProtocol: transportTLS},
				}
				fc.Filters = []*listener.Filter{tcpProxyTo(fc.Name, w, logs)}
				out = append(out, fc)
			}
		}
	}
	return out
}

// autoPassthroughChain: sni_cluster sets the upstream cluster from the SNI,
// which clients build as outbound_.<port>_.<subset>_.<host>
// (gateway.go, AUTO_PASSTHROUGH with envoy.filters.network.sni_cluster).
func (b *builder) autoPassthroughChain(s *gwServer, logs []*accesslogv3.AccessLog) *listener.FilterChain {
	name := fmt.Sprintf("%s|%s|auto-passthrough", s.ref, s.srv.GetPort().GetName())
	// Any SNI: clients send outbound_.<port>_.<subset>_.<host>, which Envoy
	// server_names cannot express as a pattern; sni_cluster picks the
	// cluster and an unknown name fails as no cluster.
	return &listener.FilterChain{
		Name:             name,
		FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: transportTLS},
		Filters: []*listener.Filter{
			{Name: "envoy.filters.network.sni_cluster", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&snicluster.SniCluster{})}},
			tcpProxyFilter(name, BlackHoleCluster, nil, logs),
		},
	}
}

// sniDNATClusters mirror a target's clusters under the SNI name, without
// TLS of their own: the client's mTLS passes through.
func (b *builder) sniDNATClusters(t *target) {
	dr := b.m.DestinationRuleFor(t.host, b.proxy)
	subsets := []*networkingapi.Subset{{}}
	if dr != nil {
		subsets = append(subsets, dr.Spec.GetSubsets()...)
	}
	for _, ss := range subsets {
		c := b.targetCluster(t, ss.GetName(), ss.GetLabels())
		c.Name = IstioSNI(t.port, ss.GetName(), t.host)
		if c.LoadAssignment != nil {
			c.LoadAssignment.ClusterName = c.Name
		}
		c.TransportSocket = nil
		c.TransportSocketMatches = nil
		delete(c.TypedExtensionProtocolOptions, httpOptsKey)
		b.addCluster(c)
	}
}
