package translate

import (
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfsc "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// The ALPN of Istio mTLS on an HTTP request depends on the request's
// upstream HTTP version, which a cluster's static ALPN cannot express. Istio's
// outbound and gateway HCMs carry the istio.alpn filter
// (pilot/pkg/networking/core/listener_builder.go, buildHTTPConnectionManager:
// "append ALPN HTTP filter ... for outbound listener only"; config in
// pilot/pkg/xds/filters/filters.go, Alpn: HTTP/1.0 -> istio-http/1.0,istio,http/1.0,
// HTTP/1.1 -> istio-http/1.1,istio,http/1.1, HTTP/2 -> istio-h2,istio,h2).
// That filter (istio/proxy source/extensions/filters/http/alpn/alpn_filter.cc)
// takes the upstream protocol of the route's cluster (the request's own for
// clusters that forward in the downstream protocol) and stores the list in
// the well-known filter state envoy.network.application_protocols, which
// overrides the cluster's ALPN for the request's upstream connection (and
// keys its connection pool)
// (https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/advanced/well_known_filter_state).
// It skips clusters marked istio.alpn_override=false, i.e. DestinationRule
// SIMPLE/MUTUAL (pilot/pkg/networking/util/util.go, AddALPNOverrideToMetadata).
// The clusters themselves carry the TCP list istio-peer-exchange,istio
// (cluster.go), which is what a tcp_proxy to them offers.
//
// Stock Envoy has no istio.alpn, so Envoy's own set_filter_state filter sets
// the same filter state. It is disabled in the HCM and enabled per route with
// the list of the route's cluster: a fixed list for clusters with an explicit
// protocol, a CEL format on the request's protocol for the others. A
// weighted route whose clusters would get different lists (or none for
// some) gets none: set_filter_state runs before the router picks the
// cluster. Every shipped bundle's weighted routes agree.
const alpnFilterName = "meshtls.alpn"

// applicationProtocolsKey is Envoy's well-known filter state object for the
// upstream ALPN override (a comma-separated list).
const applicationProtocolsKey = "envoy.network.application_protocols"

// Istio's per-request ALPN lists (pilot/pkg/xds/filters/filters.go,
// mtlsHTTP10ALPN, mtlsHTTP11ALPN, mtlsHTTP2ALPN), as filter state values.
const (
	alpnHTTP11 = "istio-http/1.1,istio,http/1.1"
	alpnHTTP2  = "istio-h2,istio,h2"
	// alpnByProtocol picks the list from the request's protocol, for
	// clusters that forward in the downstream protocol.
	alpnByProtocol = `%CEL(request.protocol == 'HTTP/2' ? 'istio-h2,istio,h2' : (request.protocol == 'HTTP/1.0' ? 'istio-http/1.0,istio,http/1.0' : 'istio-http/1.1,istio,http/1.1'))%`
)

func alpnFilterConfig(format string) *setfs.Config {
	return &setfs.Config{OnRequestHeaders: []*setfsc.FilterStateValue{{
		Key: &setfsc.FilterStateValue_ObjectKey{ObjectKey: applicationProtocolsKey},
		Value: &setfsc.FilterStateValue_FormatString{FormatString: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
				Specifier: &core.DataSource_InlineString{InlineString: format},
			}},
		}},
	}}}
}

// alpnHTTPFilter is the HCM's ALPN filter, off unless a route enables it.
func alpnHTTPFilter() *hcm.HttpFilter {
	return &hcm.HttpFilter{
		Name:       alpnFilterName,
		Disabled:   true,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(alpnFilterConfig(alpnByProtocol))},
	}
}

// skipALPNOverride records that requests routed to cluster name keep the
// cluster's own ALPN.
func (b *builder) skipALPNOverride(name string) {
	if b.noALPNOverride == nil {
		b.noALPNOverride = map[string]bool{}
	}
	b.noALPNOverride[name] = true
}

// enableALPNOverrides turns the ALPN filter on for every route whose
// clusters get Istio's override. Only RDS route configs are visited: those
// of the HCMs that carry the filter (outbound and gateway); inbound HCMs
// have inline routes and no filter, as Istio's.
func (b *builder) enableALPNOverrides() {
	enable := map[string]*anypb.Any{}
	for _, rc := range b.routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				v := b.routeALPN(r.GetRoute())
				if v == "" {
					continue
				}
				if enable[v] == nil {
					// A route-level FilterConfig must carry a config to
					// enable a filter disabled in the HCM.
					enable[v] = mustAny(&route.FilterConfig{Config: mustAny(alpnFilterConfig(v))})
				}
				if r.TypedPerFilterConfig == nil {
					r.TypedPerFilterConfig = map[string]*anypb.Any{}
				}
				r.TypedPerFilterConfig[alpnFilterName] = enable[v]
			}
		}
	}
}

// routeALPN is the override for a route's requests, "" for none.
func (b *builder) routeALPN(ra *route.RouteAction) string {
	if ra == nil {
		return ""
	}
	names := []string{ra.GetCluster()}
	if wc := ra.GetWeightedClusters(); wc != nil {
		names = nil
		for _, c := range wc.GetClusters() {
			names = append(names, c.GetName())
		}
	}
	value := ""
	for i, name := range names {
		v := b.clusterALPN(name)
		if v == "" || (i > 0 && v != value) {
			return ""
		}
		value = v
	}
	return value
}

// clusterALPN is the override istio.alpn applies for requests to cluster
// name: none for SIMPLE/MUTUAL clusters (and unknown ones), else by the
// cluster's upstream HTTP protocol.
func (b *builder) clusterALPN(name string) string {
	c := b.clusters[name]
	if c == nil || b.noALPNOverride[name] {
		return ""
	}
	o := &httpopts.HttpProtocolOptions{}
	if a := c.GetTypedExtensionProtocolOptions()[httpOptsKey]; a != nil {
		if err := a.UnmarshalTo(o); err != nil {
			panic(fmt.Sprintf("translate: protocol options of %s: %v", name, err)) // we marshalled it
		}
	}
	switch {
	case o.GetUseDownstreamProtocolConfig() != nil:
		return alpnByProtocol
	case o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil:
		return alpnHTTP2
	default:
		return alpnHTTP11 // Envoy's default upstream protocol is HTTP/1.1
	}
}
