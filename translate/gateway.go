package translate

import (
	"fmt"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	snicluster "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
)

// gwServer is one Gateway server with what we derive from it.
type gwServer struct {
	gw     *networking.Gateway
	srv    *networkingapi.Server
	index  int
	ref    string // "ns/name" of the Gateway
	proto  mesh.Protocol
	tls    *networkingapi.ServerTLSSettings
	res    string // "Gateway ns/name"
	path   string // spec.servers[i]
	mode   networkingapi.ServerTLSSettings_TLSmode
	isHTTP bool // HTTP-class server (HTTP, HTTP2, GRPC), plaintext
}

// terminates reports a server whose TLS the gateway ends.
func (s *gwServer) terminates() bool {
	if s.tls == nil || !(s.proto == mesh.ProtoHTTPS || s.proto == mesh.ProtoTLS) {
		return false
	}
	switch s.mode {
	case networkingapi.ServerTLSSettings_SIMPLE, networkingapi.ServerTLSSettings_MUTUAL,
		networkingapi.ServerTLSSettings_OPTIONAL_MUTUAL, networkingapi.ServerTLSSettings_ISTIO_MUTUAL:
		return true
	}
	return false
}

// buildGateway emits a standalone gateway: one bound listener per server
// port, upstream clusters as for sidecars (pilot/pkg/networking/core/gateway.go,
// buildGatewayListeners / buildGatewayHTTPRouteConfig).
func (b *builder) buildGateway() {
	targets := b.sidecarTargets() // same registry view as a sidecar in this namespace
	for _, t := range targets {
		b.buildTargetClusters(t)
		b.targetPorts[t.host] = append(b.targetPorts[t.host], t.port)
	}
	for _, c := range passthroughClusters() {
		b.addCluster(c)
	}
	byPort := map[uint32][]*gwServer{}
	for _, gs := range b.m.GatewayServers(b.proxy) {
		g := gs.Gateway
		idx := slices.Index(g.Spec.GetServers(), gs.Server)
		s := &gwServer{
			gw:    g,
			srv:   gs.Server,
			index: idx,
			ref:   g.Namespace + "/" + g.Name,
			proto: mesh.PortProtocol(gs.Server.GetPort().GetProtocol(), "", gs.Server.GetPort().GetNumber()),
			tls:   gs.Server.GetTls(),
			res:   fmt.Sprintf("Gateway %s/%s", g.Namespace, g.Name),
			path:  fmt.Sprintf("spec.servers[%d]", idx),
			mode:  gs.Server.GetTls().GetMode(),
		}
		s.isHTTP = s.proto.IsHTTP()
		b.checkServer(s)
		byPort[gs.Server.GetPort().GetNumber()] = append(byPort[gs.Server.GetPort().GetNumber()], s)
	}
	autoPassthrough := false
	for _, port := range sortedKeys(byPort) {
		if b.gatewayListener(port, byPort[port], targets) {
			autoPassthrough = true
		}
	}
	if autoPassthrough {
		// AUTO_PASSTHROUGH routes on SNI outbound_.<port>_.<subset>_.<host>
		// to clusters of that name that forward the bytes untouched
		// (pilot/pkg/networking/core/cluster.go, SniDnat clusters).
		for _, t := range targets {
			b.sniDNATClusters(t)
		}
	}
}

func (b *builder) checkServer(s *gwServer) {
	if s.srv.GetBind() != "" {
		b.unsupported(s.res, s.path+".bind")
	}
	if s.srv.GetDefaultEndpoint() != "" {
		b.unsupported(s.res, s.path+".defaultEndpoint")
	}
	if s.srv.GetPort().GetTargetPort() != 0 {
		b.unsupported(s.res, s.path+".port.targetPort")
	}
	t := s.tls
	if t == nil {
		return
	}
	p := s.path + ".tls"
	if len(t.GetVerifyCertificateSpki()) > 0 {
		b.unsupported(s.res, p+".verifyCertificateSpki")
	}
	if len(t.GetVerifyCertificateHash()) > 0 {
		b.unsupported(s.res, p+".verifyCertificateHash")
	}
	if t.GetCaCrl() != "" {
		b.unsupported(s.res, p+".caCrl")
	}
	if len(t.GetCredentialNames()) > 0 {
		b.unsupported(s.res, p+".credentialNames")
	}
	if len(t.GetTlsCertificates()) > 0 {
		b.unsupported(s.res, p+".tlsCertificates")
	}
}

// gatewayListener builds 0.0.0.0_<port> for the servers on port; it
// reports whether an AUTO_PASSTHROUGH server needs SNI-DNAT clusters.
func (b *builder) gatewayListener(port uint32, servers []*gwServer, targets []*target) (autoPassthrough bool) {
	name := OutboundListenerName(port)
	logs := accessLogs(b.proxyName(), accesslog.DirectionGateway, name)
	var used []string
	for _, s := range servers {
		tls := ""
		if s.tls != nil {
			tls = " tls " + s.mode.String()
		}
		used = append(used, fmt.Sprintf("%s %s (%s%s)", s.ref, s.path, s.srv.GetPort().GetProtocol(), tls))
	}
	b.decide(mesh.GatewayDecisionKey(port), mesh.Decision{Gateway: strings.Join(used, "; ")})
	var chains []*listener.FilterChain
	var plainHTTP []*gwServer
	tlsBased, plain := false, false
	for _, s := range servers {
		switch {
		case s.isHTTP:
			plain = true
			plainHTTP = append(plainHTTP, s)
		case s.terminates():
			tlsBased = true
			chains = append(chains, b.terminatedChain(port, s, logs))
		case s.proto.IsTLS() && s.mode == networkingapi.ServerTLSSettings_PASSTHROUGH:
			tlsBased = true
			chains = append(chains, b.passthroughChains(port, s, logs)...)
		case s.proto.IsTLS() && s.mode == networkingapi.ServerTLSSettings_AUTO_PASSTHROUGH:
			tlsBased = true
			autoPassthrough = true
			chains = append(chains, b.autoPassthroughChain(port, s, logs))
		case s.proto.IsTCP() && !s.proto.IsTLS():
			plain = true
			if fc := b.gatewayTCPChain(port, s, nil, logs); fc != nil {
				chains = append(chains, fc)
			}
		default:
			b.fail(fmt.Errorf("%s: %s: protocol %q with tls mode %v is not supported by meshtls", s.res, s.path, s.srv.GetPort().GetProtocol(), s.mode))
		}
	}
	if plain && tlsBased {
		b.fail(fmt.Errorf("gateway %s port %d: plaintext and TLS servers share the port; meshtls (like Istio, which keeps one) needs one kind per port", b.proxy.ID(), port))
		return autoPassthrough
	}
	if len(plainHTTP) > 0 {
		if len(chains) > 0 {
			b.fail(fmt.Errorf("gateway %s port %d: HTTP and TCP servers share the port; meshtls supports one kind per port", b.proxy.ID(), port))
			return autoPassthrough
		}
		rc := b.gatewayRouteConfig(fmt.Sprintf("http.%d", port), port, plainHTTP)
		b.routes = append(b.routes, rc)
		chains = append(chains, &listener.FilterChain{Name: name + "|http", Filters: []*listener.Filter{b.gatewayHCM(port, rc.Name, logs)}})
	}
	chains = dedupeChains(b, name, chains)
	if len(chains) == 0 {
		// Istio drops a listener without filter chains: the port refuses
		// connections (gateway.go, buildGatewayListeners).
		return autoPassthrough
	}
	l := &listener.Listener{
		Name:         name,
		Address:      tcpAddress("0.0.0.0", port),
		FilterChains: chains,
		AccessLog:    listenerAccessLogs(b.proxyName(), accesslog.DirectionGateway, name),
	}
	if tlsBased {
		l.ListenerFilters = []*listener.ListenerFilter{tlsInspector()}
	}
	b.listeners = append(b.listeners, l)
	return autoPassthrough
}

// dedupeChains keeps the first of chains with identical matches (Envoy
// rejects duplicates; Istio keeps the first server, gateway.go) and reports
// the conflict.
func dedupeChains(b *builder, listenerName string, chains []*listener.FilterChain) []*listener.FilterChain {
	var out []*listener.FilterChain
	seen := map[string]string{}
	for _, fc := range chains {
		key := fc.GetFilterChainMatch().String()
		if first, ok := seen[key]; ok {
			b.fail(fmt.Errorf("gateway %s listener %s: filter chains %q and %q match the same connections (same SNI hosts); give the servers distinct hosts", b.proxy.ID(), listenerName, first, fc.Name))
			continue
		}
		seen[key] = fc.Name
		out = append(out, fc)
	}
	return out
}

// serverHosts splits Gateway server hosts "ns/host" into hosts and the
// namespace a VirtualService must be in ("*" any, "." the Gateway's)
// (istio/api networking/v1alpha3/gateway.proto, Server.hosts).
type serverHost struct{ ns, host string }

func (s *gwServer) hosts() []serverHost {
	var out []serverHost
	for _, h := range s.srv.GetHosts() {
		ns, host := "*", h
		if i := strings.Index(h, "/"); i >= 0 {
			ns, host = h[:i], h[i+1:]
			if ns == "." {
				ns = s.gw.Namespace
			}
		}
		out = append(out, serverHost{ns, host})
	}
	return out
}

// sniNames are the server_names of a TLS server's chain: its hosts, none
// when a host is "*" (any SNI, and no SNI at all).
func (s *gwServer) sniNames() []string {
	var out []string
	for _, h := range s.hosts() {
		if h.host == "*" {
			return nil
		}
		if !slices.Contains(out, h.host) {
			out = append(out, h.host)
		}
	}
	slices.Sort(out)
	return out
}

// hostMatch intersects a VirtualService host with a server host, returning
// the more specific one (pilot/pkg/networking/core/gateway.go, pickMatchingGatewayHosts;
// pkg/config/host/name.go Matches).
func hostMatch(vsHost, serverHost string) (string, bool) {
	switch {
	case vsHost == serverHost:
		return vsHost, true
	case serverHost == "*":
		return vsHost, true
	case vsHost == "*":
		return serverHost, true
	case strings.HasPrefix(serverHost, "*.") && strings.HasSuffix(vsHost, serverHost[1:]):
		return vsHost, true
	case strings.HasPrefix(vsHost, "*.") && strings.HasSuffix(serverHost, vsHost[1:]):
		return serverHost, true
	}
	return "", false
}

// boundVirtualServices are the VirtualServices bound to s's Gateway that the
// server's host namespaces admit, each with the hosts it serves there.
func (b *builder) boundVirtualServices(s *gwServer) []vsHosts {
	var out []vsHosts
	for _, vs := range b.m.VirtualServicesFor(s.ref, b.proxy.Namespace) {
		var hosts []string
		for _, sh := range s.hosts() {
			if sh.ns != "*" && sh.ns != vs.Namespace {
				continue
			}
			for _, h := range vs.Spec.GetHosts() {
				if m, ok := hostMatch(h, sh.host); ok && !slices.Contains(hosts, m) {
					hosts = append(hosts, m)
				}
			}
		}
		if len(hosts) > 0 {
			out = append(out, vsHosts{vs, hosts})
		}
	}
	return out
}

type vsHosts struct {
	vs    *networking.VirtualService
	hosts []string
}

// gatewayRouteConfig: virtual hosts from the http routes of the bound
// VirtualServices; routes of several VirtualServices for one host are
// merged in order (gateway.go, buildGatewayHTTPRouteConfig). Hosts no
// VirtualService serves get Envoy's 404.
//
// tls.httpsRedirect belongs to its server: it marks the virtual hosts that
// server contributes, and each of the server's own hosts gets a virtual host
// even without a VirtualService, so a redirect-only server answers 301
// (gateway.go, buildGatewayHTTPRouteConfig: RequireTls ALL per server, then
// "create VirtualHost to redirect" for server.Hosts taken as written).
func (b *builder) gatewayRouteConfig(name string, port uint32, servers []*gwServer) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: name, ValidateClusters: wrapperspb.Bool(false)}
	byHost := map[string]*route.VirtualHost{}
	var order []string
	vhost := func(h string) *route.VirtualHost {
		h = strings.ToLower(h)
		v, ok := byHost[h]
		if !ok {
			v = &route.VirtualHost{Name: fmt.Sprintf("%s:%d", h, port), Domains: []string{h, fmt.Sprintf("%s:%d", h, port)}}
			if h == "*" {
				v.Domains = []string{"*"}
			}
			byHost[h] = v
			order = append(order, h)
		}
		return v
	}
	for _, s := range servers {
		redirect := s.tls.GetHttpsRedirect()
		for _, vh := range b.boundVirtualServices(s) {
			// Only the http block applies to HTTP(S) servers; a
			// VirtualService none of whose routes applies here is skipped
			// (route.go, BuildHTTPRoutesForVirtualService: "no routes matched").
			routes := b.httpRoutes(vh.vs, port, s.ref, b.proxy.Labels, s.tls != nil)
			if len(routes) == 0 {
				continue
			}
			for _, h := range vh.hosts {
				v := vhost(h)
				v.Routes = append(v.Routes, routes...)
				if redirect {
					v.RequireTls = route.VirtualHost_ALL
				}
			}
		}
		if redirect {
			for _, h := range s.srv.GetHosts() {
				vhost(h).RequireTls = route.VirtualHost_ALL
			}
		}
	}
	for _, h := range order {
		rc.VirtualHosts = append(rc.VirtualHosts, byHost[h])
	}
	return rc
}

// gatewayHCM: gateways overwrite XFCC with what they verified
// (SANITIZE_SET, meshConfig.defaultConfig.gatewayTopology default) and use
// the client's address (pilot/pkg/networking/core/gateway.go,
// buildGatewayConnectionManager).
func (b *builder) gatewayHCM(port uint32, routeName string, logs []*accesslogv3.AccessLog) *listener.Filter {
	return hcmFilter(&hcm.HttpConnectionManager{
		StatPrefix: fmt.Sprintf("outbound_0.0.0.0_%d", port),
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: routeName,
		}},
		HttpFilters:              routeHTTPFilters(),
		AccessLog:                logs,
		UseRemoteAddress:         wrapperspb.Bool(true),
		ForwardClientCertDetails: hcm.HttpConnectionManager_SANITIZE_SET,
		SetCurrentClientCertDetails: &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true),
			Cert:    true,
			Uri:     true,
			Dns:     true,
		},
	})
}

// terminatedChain ends TLS for one server (matched by SNI) and then speaks
// HTTP (HTTPS servers: http routes) or TCP (TLS servers: tcp routes)
// (gateway.go, createGatewayHTTPFilterChainOpts / createGatewayTCPFilterChainOpts).
func (b *builder) terminatedChain(port uint32, s *gwServer, logs []*accesslogv3.AccessLog) *listener.FilterChain {
	fc := &listener.FilterChain{
		Name:             fmt.Sprintf("%s|%s|%s", s.ref, s.srv.GetPort().GetName(), strings.Join(s.sniNames(), ",")),
		FilterChainMatch: &listener.FilterChainMatch{ServerNames: s.sniNames(), TransportProtocol: transportTLS},
	}
	httpOver := s.proto == mesh.ProtoHTTPS
	fc.TransportSocket = b.serverTLSSocket(s, httpOver)
	if httpOver {
		rc := b.gatewayRouteConfig(fmt.Sprintf("https.%d.%s.%s.%s", port, s.srv.GetPort().GetName(), s.gw.Name, s.gw.Namespace), port, []*gwServer{s})
		b.routes = append(b.routes, rc)
		fc.Filters = []*listener.Filter{b.gatewayHCM(port, rc.Name, logs)}
		return fc
	}
	tcp := b.gatewayTCPChain(port, s, fc, logs)
	if tcp == nil {
		// No tcp route: Istio builds no chain, so the handshake has no
		// chain to land on; keep the TLS chain but send nowhere.
		fc.Filters = []*listener.Filter{tcpProxyFilter(BlackHoleCluster, BlackHoleCluster, nil, logs)}
		return fc
	}
	return tcp
}

// serverTLSSocket is the DownstreamTlsContext of a terminating server
// (pilot/pkg/networking/core/gateway.go, buildGatewayListenerTLSContext;
// the modes are told apart there; OPTIONAL_MUTUAL is istio/api
// networking/v1alpha3/gateway.proto, ServerTLSSettings).
func (b *builder) serverTLSSocket(s *gwServer, http bool) *core.TransportSocket {
	t := s.tls
	common := &tlsv3.CommonTlsContext{}
	if http {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	if v, ok := tlsVersion(t.GetMinProtocolVersion()); ok {
		common.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: v}
	}
	if v, ok := tlsVersion(t.GetMaxProtocolVersion()); ok {
		if common.TlsParams == nil {
			common.TlsParams = &tlsv3.TlsParameters{}
		}
		common.TlsParams.TlsMaximumProtocolVersion = v
	}
	if len(t.GetCipherSuites()) > 0 {
		if common.TlsParams == nil {
			common.TlsParams = &tlsv3.TlsParameters{}
		}
		common.TlsParams.CipherSuites = t.GetCipherSuites()
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	sans := sanMatchers(t.GetSubjectAltNames())
	switch t.GetMode() {
	case networkingapi.ServerTLSSettings_ISTIO_MUTUAL:
		b.needSecret(SecretDefault, secretNeed{})
		b.needSecret(SecretRootCA, secretNeed{})
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsConfig(SecretDefault)}
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: sdsConfig(SecretRootCA),
		}}
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
		return tlsSocket(ctx)
	}
	// Server certificate: credentialName over SDS, else files.
	mutual := t.GetMode() == networkingapi.ServerTLSSettings_MUTUAL || t.GetMode() == networkingapi.ServerTLSSettings_OPTIONAL_MUTUAL
	var hosts []string
	for _, h := range s.hosts() {
		if h.host != "*" {
			hosts = append(hosts, h.host)
			continue
		}
		// A "*" server names no host: an issued certificate covers the
		// hosts of the VirtualServices bound to it (meshtls's choice; a
		// real cluster's credential is whatever the user stored).
		for _, vh := range b.boundVirtualServices(s) {
			hosts = append(hosts, vh.hosts...)
		}
	}
	switch {
	case t.GetCredentialName() != "":
		name := CredentialSecretName(t.GetCredentialName())
		b.needSecret(name, secretNeed{kind: needGatewayServer, credential: t.GetCredentialName(), hosts: hosts})
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsConfig(name)}
		if mutual && t.GetCaCertificates() == "" {
			ca := CredentialCASecretName(t.GetCredentialName())
			b.needSecret(ca, secretNeed{kind: needGatewayServer, credential: t.GetCredentialName(), hosts: hosts})
			common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
				ValidationContextSdsSecretConfig: sdsConfig(ca),
			}}
		}
	case t.GetServerCertificate() != "" && t.GetPrivateKey() != "":
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: t.GetServerCertificate()}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_Filename{Filename: t.GetPrivateKey()}},
		}}
	default:
		b.fail(fmt.Errorf("%s: %s.tls: mode %v needs credentialName or serverCertificate and privateKey", s.res, s.path, t.GetMode()))
	}
	if mutual {
		if t.GetCaCertificates() != "" {
			common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:                 &core.DataSource{Specifier: &core.DataSource_Filename{Filename: t.GetCaCertificates()}},
				MatchTypedSubjectAltNames: sans,
			}}
		} else if t.GetCredentialName() == "" {
			b.fail(fmt.Errorf("%s: %s.tls: mode %v needs caCertificates or credentialName to verify clients", s.res, s.path, t.GetMode()))
		}
		// MUTUAL requires a client certificate; OPTIONAL_MUTUAL asks for
		// one and verifies it if sent.
		ctx.RequireClientCertificate = wrapperspb.Bool(t.GetMode() == networkingapi.ServerTLSSettings_MUTUAL)
	}
	return tlsSocket(ctx)
}

func tlsVersion(v networkingapi.ServerTLSSettings_TLSProtocol) (tlsv3.TlsParameters_TlsProtocol, bool) {
	switch v {
	case networkingapi.ServerTLSSettings_TLSV1_0:
		return tlsv3.TlsParameters_TLSv1_0, true
	case networkingapi.ServerTLSSettings_TLSV1_1:
		return tlsv3.TlsParameters_TLSv1_1, true
	case networkingapi.ServerTLSSettings_TLSV1_2:
		return tlsv3.TlsParameters_TLSv1_2, true
	case networkingapi.ServerTLSSettings_TLSV1_3:
		return tlsv3.TlsParameters_TLSv1_3, true
	}
	return 0, false
}

// gatewayTCPChain: the first tcp route of the bound VirtualServices
// (TCP servers, and TLS servers after termination). base carries the TLS
// match and socket when the server terminates; nil when no route applies.
func (b *builder) gatewayTCPChain(port uint32, s *gwServer, base *listener.FilterChain, logs []*accesslogv3.AccessLog) *listener.FilterChain {
	for _, vh := range b.boundVirtualServices(s) {
		w := b.tcpRoute(vh.vs, port, s.ref)
		if w == nil {
			continue
		}
		fc := base
		if fc == nil {
			fc = &listener.FilterChain{Name: fmt.Sprintf("%s|%s", s.ref, s.srv.GetPort().GetName())}
		}
		fc.Filters = []*listener.Filter{tcpProxyTo(fc.Name, w, logs)}
		return fc
	}
	return nil
}

// passthroughChains: one chain per VirtualService tls route, matched on its
// sniHosts within the server's hosts, forwarding the bytes untouched
// (gateway.go, createGatewayTCPFilterChainOpts for PASSTHROUGH;
// networkfilter.go / tls.go buildSidecarOutboundTLSFilterChainOpts-like matching).
func (b *builder) passthroughChains(port uint32, s *gwServer, logs []*accesslogv3.AccessLog) []*listener.FilterChain {
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
func (b *builder) autoPassthroughChain(port uint32, s *gwServer, logs []*accesslogv3.AccessLog) *listener.FilterChain {
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
