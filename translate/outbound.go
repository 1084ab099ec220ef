package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	previoushosts "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	envoytype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
)

// buildOutbound emits virtualOutbound (0.0.0.0:15001) and one
// bind_to_port=false listener per destination port that it hands captured
// connections to by original destination (pilot/pkg/networking/core/listener.go,
// buildSidecarOutboundListeners; listener_builder.go, buildVirtualOutboundListener).
func (b *builder) buildOutbound(targets []*target) {
	name := VirtualOutboundListener
	b.listeners = append(b.listeners, &listener.Listener{
		Name:           name,
		Address:        tcpAddress("0.0.0.0", OutboundCapturePort),
		UseOriginalDst: wrapperspb.Bool(true),
		// Destinations with no listener of their own go out untouched
		// under ALLOW_ANY (Istio's default), to BlackHoleCluster under
		// REGISTRY_ONLY (listener_builder.go, buildOutboundCatchAllNetworkFilterChains).
		FilterChains: []*listener.FilterChain{{
			Name:    "PassthroughFilterChain",
			Filters: []*listener.Filter{b.catchAllTCPProxy(accessLogs(b.proxyName(), accesslog.DirectionOutbound, name))},
		}},
		AccessLog: listenerAccessLogs(b.proxyName(), accesslog.DirectionOutbound, name),
	})
	vs := b.sidecarVirtualServices(targets)
	byPort := map[uint32][]*target{}
	for _, t := range targets {
		byPort[t.port] = append(byPort[t.port], t)
	}
	for _, port := range sortedKeys(byPort) {
		b.outboundPortListener(port, byPort[port], vs)
	}
}

// outboundPortListener is 0.0.0.0_<port>. We have no cluster IPs (service
// names resolve to pod IPs), so TCP services are told apart by endpoint IP,
// as Istio does for headless services (listener.go, buildSidecarOutboundListener
// with per-endpoint matches). HTTP services share one HCM routed by Host.
func (b *builder) outboundPortListener(port uint32, ts []*target, vs map[string]*networking.VirtualService) {
	name := OutboundListenerName(port)
	logs := accessLogs(b.proxyName(), accesslog.DirectionOutbound, name)
	var chains []*listener.FilterChain
	var httpTargets []*target
	hasHTTP, hasAuto, needTLSInspector := false, false, false
	sniClaimed := map[string]bool{}
	var defaultTCP *target
	// autoTLS: the TCP chains of auto-detected services, again for
	// transport tls (added below when a TLS inspector runs).
	var autoTLS []*listener.FilterChain
	var passthroughTarget *listener.Filter
	claimed := map[netip.Prefix]string{}
	unclaimed := func(t *target) []netip.Prefix {
		var out []netip.Prefix
		for _, a := range b.matchPrefixes(t) {
			// One IP, one chain: a pod behind two TCP services on the same
			// port is reached through the first (Envoy rejects duplicate matches).
			if _, ok := claimed[a]; !ok {
				claimed[a] = t.host
				out = append(out, a)
			}
		}
		return out
	}
	for _, t := range ts {
		switch {
		case t.proto.IsHTTP():
			hasHTTP = true
			httpTargets = append(httpTargets, t)
		case t.proto == mesh.ProtoUDP:
			// Envoy sidecars capture TCP only.
		case t.proto == mesh.ProtoAuto:
			hasAuto = true
			httpTargets = append(httpTargets, t)
			if ips := unclaimed(t); len(ips) > 0 {
				cname := OutboundClusterName(port, "", t.host)
				chains = append(chains,
					&listener.FilterChain{
						Name:             cname + "|http",
						FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: cidrs(ips), ApplicationProtocols: plaintextHTTPALPNs},
						Filters:          []*listener.Filter{b.outboundHCM(port, logs)},
					},
					&listener.FilterChain{
						Name:             cname + "|tcp",
						FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: cidrs(ips)},
						Filters:          []*listener.Filter{b.outboundTCPProxy(t, port, vs[t.host], logs)},
					})
				autoTLS = append(autoTLS, &listener.FilterChain{
					Name:             cname + "|tls",
					FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: cidrs(ips), TransportProtocol: transportTLS},
					Filters:          []*listener.Filter{b.outboundTCPProxy(t, port, vs[t.host], logs)},
				})
			}
		case t.proto.IsTLS() && b.hasSidecarTLSRoute(vs[t.host], port):
			// A VirtualService tls route for the host: one chain per match
			// on its sniHosts, replacing the host's default chain
			// (tls.go, buildSidecarOutboundTLSFilterChainOpts).
			var ips []netip.Prefix
			if !(t.se != nil && len(t.prefixes) == 0) && t.resolve != resolveNone {
				if ips = unclaimed(t); len(ips) == 0 {
					continue
				}
			}
			needTLSInspector = true
			chains = append(chains, b.sidecarTLSRouteChains(vs[t.host], port, ips, sniClaimed, logs)...)
		case t.se != nil && len(t.prefixes) == 0 && t.proto.IsTLS():
			// TLS to a ServiceEntry host without addresses: matched on SNI
			// (listener.go, buildSidecarOutboundTLSFilterChainOpts: server_names
			// from the hosts when there is no VIP).
			if _, dup := sniClaimed[t.host]; dup {
				continue
			}
			sniClaimed[t.host] = true
			needTLSInspector = true
			chains = append(chains, &listener.FilterChain{
				Name:             OutboundClusterName(port, "", t.host),
				FilterChainMatch: &listener.FilterChainMatch{ServerNames: append([]string{t.host}, b.aliasHosts(t)...), TransportProtocol: transportTLS},
				Filters:          []*listener.Filter{b.outboundTCPProxy(t, port, vs[t.host], logs)},
			})
		case t.resolve == resolveNone && len(t.prefixes) == 0:
			// resolution NONE without addresses takes every connection to
			// the port, to its ORIGINAL_DST cluster (listener.go: wildcard
			// listener for the service).
			if defaultTCP == nil {
				defaultTCP = t
			}
		default:
			if ips := unclaimed(t); len(ips) > 0 {
				chains = append(chains, &listener.FilterChain{
					Name:             OutboundClusterName(port, "", t.host),
					FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: cidrs(ips)},
					Filters:          []*listener.Filter{b.outboundTCPProxy(t, port, vs[t.host], logs)},
				})
			}
		}
	}
	if defaultTCP != nil {
		passthroughTarget = b.outboundTCPProxy(defaultTCP, port, vs[defaultTCP.host], logs)
	}
	// What no service chain claims: plaintext HTTP (as http_inspector
	// detects it) to the HCM (its allow_any virtual host passes unknown
	// hosts through, block_all answers 502 under REGISTRY_ONLY), the rest
	// through (or to BlackHoleCluster, catchAllTCPProxy). On a port declared HTTP as on an
	// auto-detected one: anything else, e.g. the app's own TLS, goes to
	// PassthroughCluster, not into the HTTP codec
	// (pilot/pkg/networking/core/listener.go, buildSidecarOutboundListener:
	// ListenerProtocolHTTP on the wildcard address gets plaintextHTTPALPNs
	// and raw_buffer, and buildListenerFromEntry adds the default
	// PassthroughFilterChain).
	passthrough := b.catchAllTCPProxy(logs)
	if passthroughTarget != nil {
		passthrough = passthroughTarget
	}
	if hasHTTP || hasAuto {
		chains = append(chains, &listener.FilterChain{
			Name:             name + "|http",
			FilterChainMatch: &listener.FilterChainMatch{ApplicationProtocols: plaintextHTTPALPNs, TransportProtocol: transportRaw},
			Filters:          []*listener.Filter{b.outboundHCM(port, logs)},
		})
	}
	if needTLSInspector {
		// With a TLS inspector (for a tls chain on the port), a ClientHello
		// offering http/1.1 would match the ALPN of an auto-detected
		// service's http chain: its TLS goes to its TCP chain instead, as in
		// Istio, whose http chains of an auto-detected port match transport
		// raw_buffer and whose TCP chain is the listener's default
		// (listener.go, buildSidecarOutboundListener, ListenerProtocolAuto).
		chains = append(chains, autoTLS...)
	}
	l := &listener.Listener{
		Name:    name,
		Address: tcpAddress("0.0.0.0", port),
		// Reached only through virtualOutbound's original_dst hand-off.
		BindToPort:   wrapperspb.Bool(false),
		FilterChains: chains,
		AccessLog:    listenerAccessLogs(b.proxyName(), accesslog.DirectionOutbound, name),
	}
	// The passthrough is the default chain: Envoy narrows the chains one
	// criterion at a time and never backs up, so app TLS without a TLS
	// inspector (transport raw_buffer) that fails the HTTP chain's ALPN
	// would otherwise match nothing (listener.go, buildListenerFromEntry;
	// istio/istio#26079).
	pass := &listener.FilterChain{Name: name + "|passthrough", Filters: []*listener.Filter{passthrough}}
	if len(chains) == 0 {
		l.FilterChains = []*listener.FilterChain{pass}
	} else {
		l.DefaultFilterChain = pass
	}
	if needTLSInspector {
		l.ListenerFilters = append(l.ListenerFilters, tlsInspector())
	}
	if hasHTTP || hasAuto {
		l.ListenerFilters = append(l.ListenerFilters, httpInspector())
	}
	noDetectionTimeout(l)
	b.listeners = append(b.listeners, l)
	if len(httpTargets) > 0 {
		b.routes = append(b.routes, b.outboundRouteConfig(port, httpTargets, vs))
	}
}

func cidrs(ps []netip.Prefix) []*core.CidrRange {
	var out []*core.CidrRange
	for _, p := range ps {
		out = append(out, &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))})
	}
	return out
}

func portRange(p uint32) *envoytype.Int32Range {
	return &envoytype.Int32Range{Start: int32(p), End: int32(p) + 1}
}

func routerFilter() *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})}}
}

func hcmFilter(h *hcm.HttpConnectionManager) *listener.Filter {
	return &listener.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(h)}}
}

// tcpProxyFilter proxies to cluster, or to weighted clusters when given.
// Its access log is also written when the upstream connects (event
// accesslog.EventTCPConnected), not only at close: a pooled or long-lived
// connection would otherwise leave no line while a check looks for evidence. This is
// meshtls's choice for observability, not Istio config: it changes no
// traffic, only when lines appear. Chains that terminate downstream TLS
// drop it again (noConnectedLogOnTerminatedTLS).
func tcpProxyFilter(statPrefix, clusterName string, weighted []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight, logs []*accesslogv3.AccessLog) *listener.Filter {
	tp := &tcpproxy.TcpProxy{
		StatPrefix:       statPrefix,
		AccessLog:        logs,
		AccessLogOptions: &tcpproxy.TcpProxy_TcpAccessLogOptions{FlushAccessLogOnConnected: true},
	}
	if len(weighted) > 0 {
		tp.ClusterSpecifier = &tcpproxy.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxy.TcpProxy_WeightedCluster{Clusters: weighted}}
	} else {
		tp.ClusterSpecifier = &tcpproxy.TcpProxy_Cluster{Cluster: clusterName}
	}
	return &listener.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(tp)}}
}

// noConnectedLogOnTerminatedTLS turns the connected-time log off for
// tcp_proxy filters behind a downstream TLS transport socket (inbound mTLS,
// gateway TLS termination): tcp_proxy connects upstream as soon as the
// connection is accepted, before the downstream handshake ends, so with
// TLS 1.3 (client certificate in the client's last flight) the connected
// line can lack the verified peer (seen live: downstream_peer_uri_san null
// on TcpUpstreamConnected, set on TcpConnectionEnd). A line without the
// peer would be false evidence; those chains log at close only. Delaying
// the upstream connect (upstream_connect_mode) would change traffic.
func noConnectedLogOnTerminatedTLS(ls []*listener.Listener) {
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			if fc.GetTransportSocket() == nil {
				continue
			}
			for _, f := range fc.GetFilters() {
				a := f.GetTypedConfig()
				if !a.MessageIs(&tcpproxy.TcpProxy{}) {
					continue
				}
				tp := &tcpproxy.TcpProxy{}
				if err := a.UnmarshalTo(tp); err != nil {
					panic(fmt.Sprintf("translate: tcp_proxy of %s/%s: %v", l.GetName(), fc.GetName(), err)) // we marshalled it
				}
				tp.AccessLogOptions = nil
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(tp)}
			}
		}
	}
}

// outboundHCM is the HTTP side of an outbound port, routes from RDS "<port>".
func (b *builder) outboundHCM(port uint32, logs []*accesslogv3.AccessLog) *listener.Filter {
	return hcmFilter(&hcm.HttpConnectionManager{
		StatPrefix: fmt.Sprintf("outbound_0.0.0.0_%d", port),
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: OutboundRouteName(port),
		}},
		HttpFilters: routeHTTPFilters(),
		AccessLog:   logs,
	})
}

// outboundTCPProxy sends a TCP target to its cluster, or where the first
// VirtualService tcp route matching the port says
// (pilot/pkg/networking/core/tls.go, buildSidecarOutboundTCPTLSFilterChainOpts).
func (b *builder) outboundTCPProxy(t *target, port uint32, vs *networking.VirtualService, logs []*accesslogv3.AccessLog) *listener.Filter {
	cname := OutboundClusterName(port, "", t.host)
	// tcp routes do not apply to TLS-class ports, tls routes do
	// (tls.go, buildSidecarOutboundTCPFilterChainOpts returns nothing for them).
	if vs != nil && !t.proto.IsTLS() {
		if w := b.tcpRoute(vs, port, "mesh"); w != nil {
			return tcpProxyTo(cname, w, logs)
		}
	}
	return tcpProxyFilter(cname, cname, nil, logs)
}

// outboundRouteConfig is RDS "<port>": a virtual host per HTTP service on the
// port, plus allow_any for hosts outside the registry (ALLOW_ANY;
// pilot/pkg/networking/core/httproute.go, BuildSidecarOutboundVirtualHosts
// and the "allow_any" catch-all).
func (b *builder) outboundRouteConfig(port uint32, ts []*target, vs map[string]*networking.VirtualService) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: OutboundRouteName(port), ValidateClusters: wrapperspb.Bool(false)}
	used := map[string]bool{}
	addVhost := func(name string, candidates []string, routes []*route.Route) {
		var domains []string
		for _, d := range candidates {
			// A domain may appear once per route config (Envoy rejects
			// duplicates); the first service, in host order, keeps it.
			if !used[d] {
				used[d] = true
				domains = append(domains, d)
			}
		}
		if len(domains) > 0 {
			rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: name, Domains: domains, Routes: routes})
		}
	}
	vsRoutes := map[*networking.VirtualService][]*route.Route{}
	routesOf := func(v *networking.VirtualService) []*route.Route {
		if r, ok := vsRoutes[v]; ok {
			return r
		}
		r := b.httpRoutes(v, port, "mesh", b.proxy.Labels, false)
		vsRoutes[v] = r
		return r
	}
	onPort := map[string]bool{}
	for _, t := range ts {
		onPort[t.host] = true
		// A VirtualService replaces the default route; requests that match
		// none of its routes get 404 (httproute.go). One none of whose
		// routes applies to this port is skipped and the service keeps its
		// default route (route.go, buildSidecarVirtualHostsForVirtualService:
		// no routes, no virtual host).
		var routes []*route.Route
		if v := vs[t.host]; v != nil {
			routes = routesOf(v)
		}
		if len(routes) == 0 {
			routes = []*route.Route{defaultRoute(OutboundClusterName(port, "", t.host))}
		}
		addVhost(fmt.Sprintf("%s:%d", t.host, port), b.vhostDomains(t, port), routes)
	}
	b.vsHostVhosts(port, ts, onPort, routesOf, addVhost)
	rc.VirtualHosts = append(rc.VirtualHosts, b.catchAllVirtualHost())
	return rc
}

// catchAllVirtualHost answers requests for hosts no virtual host names:
// "allow_any" to PassthroughCluster under ALLOW_ANY, "block_all" with a
// direct 502 under REGISTRY_ONLY (pilot/pkg/networking/core/httproute.go,
// buildCatchAllVirtualHost; util.go, Passthrough and BlackHole).
func (b *builder) catchAllVirtualHost() *route.VirtualHost {
	if mesh.AllowAny(b.m.OutboundTrafficPolicy(b.proxy)) {
		return &route.VirtualHost{
			Name:    "allow_any",
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Name:  "allow_any",
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: PassthroughCluster},
					Timeout:          durationpb.New(0),
				}},
			}},
		}
	}
	return &route.VirtualHost{
		Name:    "block_all",
		Domains: []string{"*"},
		Routes: []*route.Route{{
			Name:   "block_all",
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 502}},
		}},
	}
}

// catchAllTCPProxy is where a sidecar sends TCP and TLS to destinations
// outside its registry: PassthroughCluster under ALLOW_ANY, BlackHoleCluster
// under REGISTRY_ONLY (listener_builder.go,
// buildOutboundCatchAllNetworkFiltersOnly: virtualOutbound's catch-all and
// each port listener's default chain).
func (b *builder) catchAllTCPProxy(logs []*accesslogv3.AccessLog) *listener.Filter {
	c := PassthroughCluster
	if !mesh.AllowAny(b.m.OutboundTrafficPolicy(b.proxy)) {
		c = BlackHoleCluster
	}
	return tcpProxyFilter(c, c, nil, logs)
}

// vsHostVhosts adds a virtual host for each VirtualService host that names
// no service on the port (an external name, or a service without this
// port), with the VirtualService's routes for the port: domains the host and
// host:port. On port 80 every VirtualService bound to mesh counts; on other
// ports only one that also routes a service on the port. This is how the
// documented egress-gateway patterns send http://my-nginx.mesh-external...
// (a Service with port 443 only) to the gateway on port 80.
// Source: pilot/pkg/networking/core/httproute.go (BuildSidecarOutboundVirtualHosts:
// selectVirtualServices unless the port is 80), route/route.go
// (buildSidecarVirtualHostsForVirtualService, separateVSHostsAndServices: the
// port-80 "hack").
func (b *builder) vsHostVhosts(port uint32, ts []*target, onPort map[string]bool, routesOf func(*networking.VirtualService) []*route.Route, addVhost func(string, []string, []*route.Route)) {
	for _, v := range b.meshVirtualServices() {
		var hosts []string
		routesService := false
		for _, h := range v.Spec.GetHosts() {
			if h == "*" {
				continue // never on mesh (Istio's validation), and allow_any's domain
			}
			resolved := b.resolveVSHost(h, v.Namespace, ts)
			if len(resolved) == 0 { // a wildcard matching no service on the port
				hosts = append(hosts, h)
			}
			for _, r := range resolved {
				if onPort[r] {
					routesService = true
				} else {
					hosts = append(hosts, r)
				}
			}
		}
		if len(hosts) == 0 || (port != 80 && !routesService) {
			continue
		}
		routes := routesOf(v)
		if len(routes) == 0 {
			continue
		}
		for _, h := range hosts {
			name := fmt.Sprintf("%s:%d", h, port)
			addVhost(name, []string{h, name}, routes)
		}
	}
}

// vhostDomains: the FQDN and the short forms a client in the proxy's
// namespace may use, and the cluster IP, each with and without :port
// (pilot/pkg/networking/core/httproute.go, generateVirtualHostDomains /
// generateAltVirtualHosts: "b" only from the same namespace).
func (b *builder) vhostDomains(t *target, port uint32) []string {
	hosts := []string{t.host}
	if t.svc != nil {
		if t.ns == b.proxy.Namespace {
			hosts = append(hosts, t.name)
		}
		hosts = append(hosts, t.name+"."+t.ns, t.name+"."+t.ns+".svc")
	}
	hosts = append(hosts, b.aliasHosts(t)...)
	// The cluster IP too, so a client that dials it by address is routed.
	if t.vip.IsValid() {
		hosts = append(hosts, t.vip.String())
	}
	var out []string
	for _, h := range hosts {
		out = append(out, h, fmt.Sprintf("%s:%d", h, port))
	}
	return out
}

// defaultRoute sends everything to cluster with Istio's defaults: no
// timeout, the default retry policy (pilot/pkg/networking/core/route/route.go,
// BuildDefaultHTTPOutboundRoute; route/retry/retry.go, DefaultPolicy).
func defaultRoute(clusterName string) *route.Route {
	return &route.Route{
		Name:  "default",
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName},
			Timeout:          durationpb.New(0),
			RetryPolicy:      defaultRetryPolicy(),
		}},
	}
}

// defaultRetryPolicy is Istio's: 2 retries on connect failures, refused
// streams, unavailable, cancelled and retriable codes, other hosts first
// (pilot/pkg/networking/core/route/retry/retry.go, DefaultPolicy).
func defaultRetryPolicy() *route.RetryPolicy {
	return &route.RetryPolicy{
		RetryOn:    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
		NumRetries: wrapperspb.UInt32(2),
		RetryHostPredicate: []*route.RetryPolicy_RetryHostPredicate{{
			Name:       "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &route.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushosts.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: 5,
	}
}

// sidecarVirtualServices maps target hosts to the VirtualService bound to
// "mesh" that routes them; the oldest wins when several name the same host
// (pilot/pkg/model/virtualservice.go, mergeVirtualServicesIfNeeded; we keep
// bundle order).
func (b *builder) sidecarVirtualServices(targets []*target) map[string]*networking.VirtualService {
	out := map[string]*networking.VirtualService{}
	for _, vs := range b.meshVirtualServices() {
		for _, h := range vs.Spec.GetHosts() {
			for _, host := range b.resolveVSHost(h, vs.Namespace, targets) {
				if _, ok := out[host]; !ok {
					out[host] = vs
				}
			}
		}
	}
	return out
}

// resolveVSHost turns a VirtualService host into the target hosts it names:
// short names resolve in the VirtualService's namespace
// (pilot/pkg/model/virtualservice.go, resolveVirtualServiceShortnames);
// "*.suffix" matches every target host with that suffix.
func (b *builder) resolveVSHost(h, vsNS string, targets []*target) []string {
	if strings.HasPrefix(h, "*") {
		suffix := h[1:]
		var out []string
		for _, t := range targets {
			if strings.HasSuffix(t.host, suffix) && !slices.Contains(out, t.host) {
				out = append(out, t.host)
			}
		}
		return out
	}
	if s, ok := b.m.ServiceByHost(h, vsNS); ok {
		return []string{s.Hostname()}
	}
	return []string{h}
}
