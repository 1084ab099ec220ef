package translate

import (
	"fmt"
	"slices"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
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
	// listen is the port the gateway listens on for the server: the
	// gateway Service's targetPort when the server port is a port of it
	// (mesh.GatewayPort); svc is that Service, nil when listen is the
	// server's own port.
	listen uint32
	svc    *mesh.Service
}

// port is the server's own port, as written: VirtualService port matches,
// route destinations without a port, virtual host and https route names
// use it, not the listener's (pilot/pkg/networking/core/gateway.go,
// buildGatewayHTTPRouteConfig "port := int(server.Port.Number)",
// isPortMatch; pilot/pkg/model/gateway.go, gatewayRDSRouteName).
func (s *gwServer) port() uint32 { return s.srv.GetPort().GetNumber() }

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

// buildGateway emits a standalone gateway: one bound listener per port the
// servers listen on (a server's port, or the gateway Service's targetPort
// for it: mesh.GatewayPort), upstream clusters as for sidecars
// (pilot/pkg/networking/core/gateway.go, buildGatewayListeners /
// buildGatewayHTTPRouteConfig).
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
		s.listen, s.svc = b.m.GatewayPort(b.proxy, s.port())
		b.checkServer(s)
		byPort[s.listen] = append(byPort[s.listen], s)
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
	//lint:ignore SA1019 a bundle may still set the deprecated field: refused, not ignored
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

// gatewayListener builds 0.0.0.0_<port> for the servers listening on port;
// it reports whether an AUTO_PASSTHROUGH server needs SNI-DNAT clusters.
func (b *builder) gatewayListener(port uint32, servers []*gwServer, targets []*target) (autoPassthrough bool) {
	name := OutboundListenerName(port)
	logs := accessLogs(b.proxyName(), accesslog.DirectionGateway, name)
	var used []string
	for _, s := range servers {
		tls := ""
		if s.tls != nil {
			tls = " tls " + s.mode.String()
		}
		via := ""
		if s.listen != s.port() {
			via = fmt.Sprintf(", on targetPort %d of Service %s/%s port %d", s.listen, s.svc.Namespace, s.svc.Name, s.port())
		}
		used = append(used, fmt.Sprintf("%s %s (%s%s%s)", s.ref, s.path, s.srv.GetPort().GetProtocol(), tls, via))
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
			chains = append(chains, b.terminatedChain(s, logs))
		case s.proto.IsTLS() && s.mode == networkingapi.ServerTLSSettings_PASSTHROUGH:
			tlsBased = true
			chains = append(chains, b.passthroughChains(s, logs)...)
		case s.proto.IsTLS() && s.mode == networkingapi.ServerTLSSettings_AUTO_PASSTHROUGH:
			tlsBased = true
			autoPassthrough = true
			chains = append(chains, b.autoPassthroughChain(s, logs))
		case s.proto.IsTCP() && !s.proto.IsTLS():
			plain = true
			if fc := b.gatewayTCPChain(s, nil, logs); fc != nil {
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
		// Named for the listener's port (gateway.go, gatewayRDSRouteName
		// with the resolved port).
		rc := b.gatewayRouteConfig(fmt.Sprintf("http.%d", port), plainHTTP)
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
