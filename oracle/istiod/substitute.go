package istiod

import (
	"fmt"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfsc "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpup "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Istio's sidecar image is Envoy plus a few Istio-only extensions; meshtls
// runs upstream Envoy, which rejects config naming them. Each is handled
// here and in docs/oracle.md:
//   - istio.alpn (HTTP filter, changes TLS): replaced by Envoy's
//     set_filter_state writing the same ALPN list into the well-known filter
//     state envoy.network.application_protocols, per route, with the
//     cluster's upstream protocol, skipping clusters marked
//     istio.alpn_override=false, as istio/proxy's alpn filter does;
//   - istio.metadata_exchange (TCP and HTTP) and istio.stats: telemetry
//     only, dropped.
// Any other Istio-only extension is an error, never passed through.

const (
	alpnName                = "istio.alpn"
	applicationProtocolsKey = "envoy.network.application_protocols"
	// alpnFromDownstream is the ALPN list of a cluster that forwards in the
	// downstream protocol, from the request's protocol (Istio's Alpn filter
	// config, pilot/pkg/xds/filters/filters.go: mtlsHTTP10ALPN, mtlsHTTP11ALPN,
	// mtlsHTTP2ALPN).
	alpnFromDownstream = `%CEL(request.protocol == 'HTTP/2' ? 'istio-h2,istio,h2' : (request.protocol == 'HTTP/1.0' ? 'istio-http/1.0,istio,http/1.0' : 'istio-http/1.1,istio,http/1.1'))%`
	alpnHTTP11         = "istio-http/1.1,istio,http/1.1"
	alpnHTTP2          = "istio-h2,istio,h2"
)

// dropped are telemetry-only extensions, by filter name or type URL.
var dropped = []string{
	"istio.metadata_exchange",
	"istio.stats",
	"type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange",
	"type.googleapis.com/io.istio.http.peer_metadata.Config",
	"type.googleapis.com/stats.PluginConfig",
}

func isDropped(name, typeURL string) bool {
	return slices.Contains(dropped, name) || slices.Contains(dropped, typeURL)
}

// istioOnly reports an extension upstream Envoy does not have.
func istioOnly(name, typeURL string) bool {
	return strings.HasPrefix(name, "istio.") || strings.Contains(typeURL, "/istio.") ||
		strings.Contains(typeURL, "/io.istio.") || strings.HasPrefix(typeURL, "type.googleapis.com/stats.")
}

// typedStructURL is the type URL inside an xds.type.v3.TypedStruct (Istio
// configures some of its own filters that way).
func typedStructURL(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	if a.GetTypeUrl() != "type.googleapis.com/xds.type.v3.TypedStruct" && a.GetTypeUrl() != "type.googleapis.com/udpa.type.v1.TypedStruct" {
		return a.GetTypeUrl()
	}
	// field 1 of TypedStruct is type_url; read it without importing xds types.
	var ts struct{ url string }
	b := a.GetValue()
	if len(b) > 2 && b[0] == 0x0a {
		n, w := int(b[1]), 2
		if n&0x80 != 0 && len(b) > 3 {
			n, w = (n&0x7f)|int(b[2])<<7, 3
		}
		if w+n <= len(b) {
			ts.url = string(b[w : w+n])
		}
	}
	return ts.url
}

func substitute(listeners []*listener.Listener, routes []*route.RouteConfiguration, clusters []*cluster.Cluster, n *notes) error {
	alpnRoutes := map[string]bool{} // RDS names of HCMs that had istio.alpn
	for _, l := range listeners {
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains, l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			var kept []*listener.Filter
			for _, f := range fc.GetFilters() {
				url := typedStructURL(f.GetTypedConfig())
				switch {
				case isDropped(f.GetName(), url):
					n.add("dropped network filter %s (telemetry only)", f.GetName())
					continue
				case istioOnly(f.GetName(), url):
					return fmt.Errorf("listener %s: network filter %s (%s) is Istio-only and the oracle has no substitute for it", l.GetName(), f.GetName(), url)
				case f.GetName() == "envoy.filters.network.http_connection_manager":
					if err := substituteHCM(l.GetName(), f, alpnRoutes, n); err != nil {
						return err
					}
				}
				kept = append(kept, f)
			}
			fc.Filters = kept
		}
		for _, lf := range l.GetListenerFilters() {
			if istioOnly(lf.GetName(), typedStructURL(lf.GetTypedConfig())) {
				return fmt.Errorf("listener %s: listener filter %s is Istio-only and the oracle has no substitute for it", l.GetName(), lf.GetName())
			}
		}
	}
	byName := map[string]*cluster.Cluster{}
	for _, c := range clusters {
		byName[c.GetName()] = c
		if err := substituteCluster(c, n); err != nil {
			return err
		}
	}
	for _, rc := range routes {
		if alpnRoutes[rc.GetName()] {
			enableALPN(rc, byName)
		}
	}
	return nil
}

func substituteHCM(lname string, f *listener.Filter, alpnRoutes map[string]bool, n *notes) error {
	m := &hcm.HttpConnectionManager{}
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		return fmt.Errorf("listener %s: read HTTP connection manager: %w", lname, err)
	}
	var kept []*hcm.HttpFilter
	for _, hf := range m.GetHttpFilters() {
		url := typedStructURL(hf.GetTypedConfig())
		if ecds := hf.GetConfigDiscovery(); ecds != nil && len(ecds.GetTypeUrls()) > 0 {
			url = ecds.GetTypeUrls()[0]
		}
		switch {
		case hf.GetName() == alpnName:
			kept = append(kept, &hcm.HttpFilter{
				Name:       alpnName,
				Disabled:   true, // enabled per route (enableALPN)
				ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(alpnConfig(alpnFromDownstream))},
			})
			alpnRoutes[m.GetRds().GetRouteConfigName()] = true
			if rc := m.GetRouteConfig(); rc != nil {
				return fmt.Errorf("listener %s: istio.alpn with an inline route config is not handled by the oracle", lname)
			}
			n.add("replaced HTTP filter istio.alpn by set_filter_state on %s", applicationProtocolsKey)
		case isDropped(hf.GetName(), url):
			n.add("dropped HTTP filter %s (telemetry only)", hf.GetName())
		case istioOnly(hf.GetName(), url):
			return fmt.Errorf("listener %s: HTTP filter %s (%s) is Istio-only and the oracle has no substitute for it", lname, hf.GetName(), url)
		default:
			kept = append(kept, hf)
		}
	}
	m.HttpFilters = kept
	f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
	return nil
}

func substituteCluster(c *cluster.Cluster, n *notes) error {
	var kept []*cluster.Filter
	for _, f := range c.GetFilters() {
		url := typedStructURL(f.GetTypedConfig())
		switch {
		case isDropped(f.GetName(), url):
			n.add("dropped upstream network filter %s (telemetry only)", f.GetName())
		case istioOnly(f.GetName(), url):
			return fmt.Errorf("cluster %s: upstream filter %s (%s) is Istio-only and the oracle has no substitute for it", c.GetName(), f.GetName(), url)
		default:
			kept = append(kept, f)
		}
	}
	c.Filters = kept
	const key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	if a := c.GetTypedExtensionProtocolOptions()[key]; a != nil {
		o := &httpup.HttpProtocolOptions{}
		if err := a.UnmarshalTo(o); err != nil {
			return fmt.Errorf("cluster %s: read %s: %w", c.GetName(), key, err)
		}
		var hk []*hcm.HttpFilter
		for _, hf := range o.GetHttpFilters() {
			url := typedStructURL(hf.GetTypedConfig())
			switch {
			case isDropped(hf.GetName(), url):
				n.add("dropped upstream HTTP filter %s (telemetry only)", hf.GetName())
			case istioOnly(hf.GetName(), url):
				return fmt.Errorf("cluster %s: upstream HTTP filter %s (%s) is Istio-only and the oracle has no substitute for it", c.GetName(), hf.GetName(), url)
			default:
				hk = append(hk, hf)
			}
		}
		if len(hk) != len(o.GetHttpFilters()) {
			o.HttpFilters = hk
			c.TypedExtensionProtocolOptions[key] = mustAny(o)
		}
	}
	return nil
}

// enableALPN turns the replaced istio.alpn on for each route whose
// cluster istio/proxy's filter would override: every cluster except those
// whose metadata says istio.alpn_override=false (DestinationRule
// SIMPLE/MUTUAL, pilot/pkg/networking/util/util.go AddALPNOverrideToMetadata),
// with the ALPN of the cluster's upstream HTTP protocol.
func enableALPN(rc *route.RouteConfiguration, clusters map[string]*cluster.Cluster) {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			ra := r.GetRoute()
			if ra == nil {
				continue
			}
			names := []string{ra.GetCluster()}
			if wc := ra.GetWeightedClusters(); wc != nil {
				names = nil
				for _, c := range wc.GetClusters() {
					names = append(names, c.GetName())
				}
			}
			value := ""
			for _, name := range names {
				v := clusterALPN(clusters[name])
				if value == "" || v == "" {
					value = v
				}
				if v == "" {
					break
				}
			}
			if value == "" {
				continue
			}
			if r.TypedPerFilterConfig == nil {
				r.TypedPerFilterConfig = map[string]*anypb.Any{}
			}
			r.TypedPerFilterConfig[alpnName] = mustAny(&route.FilterConfig{Config: mustAny(alpnConfig(value))})
		}
	}
}

// clusterALPN is the override for requests to c, "" for none.
func clusterALPN(c *cluster.Cluster) string {
	if c == nil {
		return ""
	}
	if v := c.GetMetadata().GetFilterMetadata()["istio"].GetFields()["alpn_override"]; v != nil && v.GetStringValue() == "false" {
		return ""
	}
	o := &httpup.HttpProtocolOptions{}
	if a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; a != nil {
		if err := a.UnmarshalTo(o); err != nil {
			return ""
		}
	}
	switch {
	case o.GetUseDownstreamProtocolConfig() != nil:
		return alpnFromDownstream
	case o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil:
		return alpnHTTP2
	default:
		return alpnHTTP11 // Envoy's default upstream protocol is HTTP/1.1
	}
}

func alpnConfig(format string) *setfs.Config {
	return &setfs.Config{OnRequestHeaders: []*setfsc.FilterStateValue{{
		Key: &setfsc.FilterStateValue_ObjectKey{ObjectKey: applicationProtocolsKey},
		Value: &setfsc.FilterStateValue_FormatString{FormatString: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
				Specifier: &core.DataSource_InlineString{InlineString: format},
			}},
		}},
	}}}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", m, err))
	}
	return a
}
