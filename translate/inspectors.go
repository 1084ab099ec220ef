package translate

import (
	"slices"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	origdst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Protocol detection as Istio sets it up. An inspector waits for the
// client's first bytes, so where one runs, a server-first app (MySQL, SMTP)
// waiting for the client never gets a connection: Istio's
// meshConfig.protocolDetectionTimeout defaults to 0s, no timeout
// (pkg/config/mesh/mesh.go DefaultMeshConfig), set as the listeners'
// listener_filters_timeout (pilot/pkg/networking/core/listener_inbound.go
// buildInboundListener; listener.go buildListenerFromEntry, 0 when no HTTP
// inspector). istio.io, "Protocol Selection", server first protocols.
func noDetectionTimeout(l *listener.Listener) {
	l.ListenerFiltersTimeout = durationpb.New(0)
	l.ContinueOnListenerFiltersTimeout = true
}

// inboundListenerFilters are virtualInbound's listener filters: original_dst,
// then the TLS and HTTP inspectors only on the ports whose filter chains
// match on what they detect (pilot/pkg/networking/core/listener_inbound.go,
// populateListenerFilters): the TLS inspector where a chain matches
// transport tls, the HTTP inspector where one matches ALPN http/1.1 or h2c.
// A chain without destination port (the passthrough chains) stands for
// every other port.
func inboundListenerFilters(chains []*listener.FilterChain) []*listener.ListenerFilter {
	needTLS, needHTTP := map[uint32]bool{}, map[uint32]bool{}
	for _, fc := range chains {
		m := fc.GetFilterChainMatch()
		p := m.GetDestinationPort().GetValue()
		needTLS[p] = needTLS[p] || m.GetTransportProtocol() == transportTLS
		alpn := m.GetApplicationProtocols()
		needHTTP[p] = needHTTP[p] || slices.Contains(alpn, "http/1.1") || slices.Contains(alpn, "h2c")
	}
	fs := []*listener.ListenerFilter{{Name: "envoy.filters.listener.original_dst", ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&origdst.OriginalDst{})}}}
	if f := tlsInspectorOn(needTLS); f != nil {
		fs = append(fs, f)
	}
	// After the TLS inspector: once it found TLS, HTTP is not sniffed.
	if f := httpInspectorOn(needHTTP); f != nil {
		fs = append(fs, f)
	}
	return fs
}

// tlsInspectorOn runs the TLS inspector where need says so (buildTLSInspector):
// when the other ports (0) need it, everywhere but the ports that do not;
// else only on the ports that do.
func tlsInspectorOn(need map[uint32]bool) *listener.ListenerFilter {
	if !slices.Contains(mapValues(need), true) {
		return nil
	}
	var ports []uint32
	for p, n := range need {
		if p != 0 && n != need[0] {
			ports = append(ports, p)
		}
	}
	f := tlsInspector()
	if len(ports) == 0 {
		return f
	}
	slices.Sort(ports)
	f.FilterDisabled = portsPredicate(ports)
	if !need[0] {
		f.FilterDisabled = &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: f.FilterDisabled}}
	}
	return f
}

// httpInspectorOn runs the HTTP inspector everywhere except the ports
// (0 included) whose chains do not need it (buildHTTPInspector), so it also
// runs on ports no chain names when only declared ports need it.
func httpInspectorOn(need map[uint32]bool) *listener.ListenerFilter {
	if !slices.Contains(mapValues(need), true) {
		return nil
	}
	var ports []uint32
	for p, n := range need {
		if !n {
			ports = append(ports, p)
		}
	}
	f := httpInspector()
	if len(ports) > 0 {
		slices.Sort(ports)
		f.FilterDisabled = portsPredicate(ports)
	}
	return f
}

// portsPredicate matches connections to any of ports.
func portsPredicate(ports []uint32) *listener.ListenerFilterChainMatchPredicate {
	var rules []*listener.ListenerFilterChainMatchPredicate
	for _, p := range ports {
		rules = append(rules, &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_DestinationPortRange{
			DestinationPortRange: portRange(p),
		}})
	}
	if len(rules) == 1 {
		return rules[0]
	}
	return &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_OrMatch{
		OrMatch: &listener.ListenerFilterChainMatchPredicate_MatchSet{Rules: rules},
	}}
}

func mapValues(m map[uint32]bool) []bool {
	out := make([]bool, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func tlsInspector() *listener.ListenerFilter {
	return &listener.ListenerFilter{Name: "envoy.filters.listener.tls_inspector", ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})}}
}

func httpInspector() *listener.ListenerFilter {
	return &listener.ListenerFilter{Name: "envoy.filters.listener.http_inspector", ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&httpinspector.HttpInspector{})}}
}
