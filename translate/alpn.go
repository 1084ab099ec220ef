package translate

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfsc "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// The ALPN of Istio mTLS depends on the HTTP version of each request, which
// a cluster's static ALPN cannot express for auto-detected ports (the
// cluster forwards in the downstream's protocol). Istio's outbound and
// gateway HCMs carry the istio.alpn filter (pilot/pkg/networking/core/listener_builder.go,
// buildHTTPConnectionManager: "append ALPN HTTP filter ... for outbound
// listener only"; config in pilot/pkg/xds/filters/filters.go, Alpn:
// HTTP/1.0 -> istio-http/1.0, HTTP/1.1 -> istio-http/1.1, HTTP/2 -> istio-h2).
// That filter (istio/proxy source/extensions/filters/http/alpn/alpn_filter.cc)
// stores the list in the well-known filter state
// envoy.network.application_protocols, which overrides the cluster's ALPN
// for the request's upstream connection (and keys its connection pool)
// (https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/advanced/well_known_filter_state).
// It skips clusters marked istio.alpn_override=false, i.e. DestinationRule
// SIMPLE/MUTUAL (pilot/pkg/networking/util/util.go, AddALPNOverrideToMetadata).
//
// Stock Envoy has no istio.alpn, so Envoy's own set_filter_state filter sets
// the same filter state, the value computed from the request's protocol
// with a CEL format. It is disabled in the HCM and enabled only on routes
// whose clusters forward in the downstream protocol with Istio mTLS (auto
// mTLS or ISTIO_MUTUAL on an auto-detected port): for clusters with an
// explicit protocol Istio's override equals the cluster's own ALPN
// (istioMutualSocket), and SIMPLE/MUTUAL clusters are skipped as Istio does.
const alpnFilterName = "meshtls.alpn"

// applicationProtocolsKey is Envoy's well-known filter state object for the
// upstream ALPN override.
const applicationProtocolsKey = "envoy.network.application_protocols"

// alpnByProtocol maps %PROTOCOL%-style request.protocol values to Istio's
// ALPN override (pilot/pkg/xds/filters/filters.go, Alpn).
const alpnByProtocol = `%CEL(request.protocol == 'HTTP/2' ? 'istio-h2' : (request.protocol == 'HTTP/1.0' ? 'istio-http/1.0' : 'istio-http/1.1'))%`

func alpnFilterConfig() *setfs.Config {
	return &setfs.Config{OnRequestHeaders: []*setfsc.FilterStateValue{{
		Key: &setfsc.FilterStateValue_ObjectKey{ObjectKey: applicationProtocolsKey},
		Value: &setfsc.FilterStateValue_FormatString{FormatString: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
				Specifier: &core.DataSource_InlineString{InlineString: alpnByProtocol},
			}},
		}},
	}}}
}

// alpnHTTPFilter is the HCM's ALPN filter, off unless a route enables it.
func alpnHTTPFilter() *hcm.HttpFilter {
	return &hcm.HttpFilter{
		Name:       alpnFilterName,
		Disabled:   true,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(alpnFilterConfig())},
	}
}

// markALPNOverride records that requests routed to cluster name get
// Istio's per-request ALPN.
func (b *builder) markALPNOverride(name string) {
	if b.alpnOverride == nil {
		b.alpnOverride = map[string]bool{}
	}
	b.alpnOverride[name] = true
}

// enableALPNOverrides turns the ALPN filter on for the routes whose every
// cluster is marked. Routes of HCMs without the filter (inbound) never
// point at outbound clusters, so they are never marked.
func (b *builder) enableALPNOverrides() {
	if len(b.alpnOverride) == 0 {
		return
	}
	var enable *anypb.Any
	for _, rc := range b.routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if !b.routeNeedsALPN(r.GetRoute()) {
					continue
				}
				if enable == nil {
					// A route-level FilterConfig must carry a config to
					// enable a filter disabled in the HCM.
					enable = mustAny(&route.FilterConfig{Config: mustAny(alpnFilterConfig())})
				}
				if r.TypedPerFilterConfig == nil {
					r.TypedPerFilterConfig = map[string]*anypb.Any{}
				}
				r.TypedPerFilterConfig[alpnFilterName] = enable
			}
		}
	}
}

func (b *builder) routeNeedsALPN(ra *route.RouteAction) bool {
	if ra == nil {
		return false
	}
	if c := ra.GetCluster(); c != "" {
		return b.alpnOverride[c]
	}
	wcs := ra.GetWeightedClusters().GetClusters()
	for _, wc := range wcs {
		if !b.alpnOverride[wc.GetName()] {
			return false
		}
	}
	return len(wcs) > 0
}
