package crosscheck

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// A simulation of what Envoy does with one connection: which listener and
// filter chain it lands on (Envoy's filter chain match rules), what TLS
// that chain terminates, and for HTTP one request's route, cluster and the
// upstream TLS its endpoint gets.

// conn is a connection as the listener filters see it.
type conn struct {
	kind string // name in the report
	dst  netip.AddrPort
	tls  bool     // a TLS ClientHello
	alpn []string // offered in the ClientHello
	sni  string
	http bool   // plaintext HTTP/1.1 (http_inspector detects it)
	host string // Host header of the one request, for HTTP
}

// Connection kinds, as a peer would send them.
func mtlsConn(dst netip.AddrPort) conn {
	return conn{kind: "mtls", dst: dst, tls: true, alpn: []string{"istio-http/1.1", "istio", "http/1.1"}, host: "x"}
}
func mtlsTCPConn(dst netip.AddrPort) conn {
	return conn{kind: "mtls-tcp", dst: dst, tls: true, alpn: []string{"istio-peer-exchange", "istio"}}
}
func plainConn(dst netip.AddrPort, host string) conn {
	return conn{kind: "plaintext", dst: dst, http: true, host: host}
}
func appTLSConn(dst netip.AddrPort, sni string) conn {
	return conn{kind: "app-tls", dst: dst, tls: true, alpn: []string{"h2", "http/1.1"}, sni: sni}
}

// pickListener is the listener that accepts dst: for a proxy that
// captures traffic, virtualOutbound hands the connection to the listener
// bound to exactly dst, else to 0.0.0.0:port, else keeps it (Envoy's
// use_original_dst).
func (c *config) pickListener(dst netip.AddrPort, virtual string) *listener.Listener {
	var exact, wild, virt *listener.Listener
	for _, l := range c.res.Listeners {
		sa := l.GetAddress().GetSocketAddress()
		if l.GetName() == virtual {
			virt = l
		}
		if sa.GetPortValue() != uint32(dst.Port()) {
			continue
		}
		if sa.GetAddress() == dst.Addr().String() {
			exact = l
		} else if sa.GetAddress() == "0.0.0.0" {
			wild = l
		}
	}
	switch {
	case exact != nil && exact.GetName() != virtual:
		return exact
	case wild != nil && wild.GetName() != virtual:
		return wild
	}
	return virt
}

// simulate follows cn through listener l.
func (c *config) simulate(l *listener.Listener, cn conn) string {
	if l == nil {
		return "no listener"
	}
	transport, alpn, sni := "raw_buffer", []string(nil), ""
	for _, lf := range l.GetListenerFilters() {
		if disabled(lf.GetFilterDisabled(), cn.dst.Port()) {
			continue
		}
		switch {
		case strings.Contains(lf.GetName(), "tls_inspector") || strings.HasSuffix(lf.GetTypedConfig().GetTypeUrl(), "TlsInspector"):
			if cn.tls {
				transport, alpn, sni = "tls", cn.alpn, cn.sni
			}
		case strings.Contains(lf.GetName(), "http_inspector") || strings.HasSuffix(lf.GetTypedConfig().GetTypeUrl(), "HttpInspector"):
			if cn.http {
				alpn = []string{"http/1.1"}
			}
		}
	}
	fc := selectChain(l, cn.dst, transport, alpn, sni)
	if fc == nil {
		return "no filter chain: connection closed"
	}
	return c.chainAction(fc, &cn)
}

// disabled evaluates a listener filter's filter_disabled predicate on the
// destination port (the only input Istio's predicates use).
func disabled(p *listener.ListenerFilterChainMatchPredicate, port uint16) bool {
	if p == nil {
		return false
	}
	switch r := p.GetRule().(type) {
	case *listener.ListenerFilterChainMatchPredicate_AnyMatch:
		return r.AnyMatch
	case *listener.ListenerFilterChainMatchPredicate_NotMatch:
		return !disabled(r.NotMatch, port)
	case *listener.ListenerFilterChainMatchPredicate_OrMatch:
		for _, x := range r.OrMatch.GetRules() {
			if disabled(x, port) {
				return true
			}
		}
		return false
	case *listener.ListenerFilterChainMatchPredicate_AndMatch:
		for _, x := range r.AndMatch.GetRules() {
			if !disabled(x, port) {
				return false
			}
		}
		return true
	case *listener.ListenerFilterChainMatchPredicate_DestinationPortRange:
		return uint32(port) >= uint32(r.DestinationPortRange.GetStart()) && uint32(port) < uint32(r.DestinationPortRange.GetEnd())
	}
	return false
}

// selectChain applies Envoy's filter chain match order: destination port,
// destination IP, server name, transport protocol, application protocol;
// at each step the most specific matching criterion wins, and a chain
// without that criterion matches only when no specific one does. Source
// criteria are not used by either config and count as absent.
func selectChain(l *listener.Listener, dst netip.AddrPort, transport string, alpn []string, sni string) *listener.FilterChain {
	cands := l.GetFilterChains()
	steps := []func(m *listener.FilterChainMatch) (specific bool, score int){
		func(m *listener.FilterChainMatch) (bool, int) {
			if m.GetDestinationPort() == nil {
				return false, 0
			}
			if m.GetDestinationPort().GetValue() == uint32(dst.Port()) {
				return true, 1
			}
			return true, -1
		},
		func(m *listener.FilterChainMatch) (bool, int) {
			if len(m.GetPrefixRanges()) == 0 {
				return false, 0
			}
			best := -1
			for _, r := range m.GetPrefixRanges() {
				a, err := netip.ParseAddr(r.GetAddressPrefix())
				if err != nil {
					continue
				}
				bits := int(r.GetPrefixLen().GetValue())
				if r.GetPrefixLen() == nil {
					bits = a.BitLen()
				}
				if p, err := a.Prefix(bits); err == nil && p.Contains(dst.Addr()) && bits+1 > best {
					best = bits + 1
				}
			}
			return true, best
		},
		func(m *listener.FilterChainMatch) (bool, int) {
			if len(m.GetServerNames()) == 0 {
				return false, 0
			}
			best := -1
			for _, n := range m.GetServerNames() {
				if n == sni && sni != "" {
					best = max(best, 1000)
				} else if suf, ok := strings.CutPrefix(n, "*"); ok && sni != "" && strings.HasSuffix(sni, suf) {
					best = max(best, len(suf))
				}
			}
			return true, best
		},
		func(m *listener.FilterChainMatch) (bool, int) {
			if m.GetTransportProtocol() == "" {
				return false, 0
			}
			if m.GetTransportProtocol() == transport {
				return true, 1
			}
			return true, -1
		},
		func(m *listener.FilterChainMatch) (bool, int) {
			if len(m.GetApplicationProtocols()) == 0 {
				return false, 0
			}
			for _, a := range alpn {
				if slices.Contains(m.GetApplicationProtocols(), a) {
					return true, 1
				}
			}
			return true, -1
		},
	}
	for _, step := range steps {
		var specific, wild []*listener.FilterChain
		best := 0
		for _, fc := range cands {
			isSpecific, score := step(fc.GetFilterChainMatch())
			switch {
			case !isSpecific:
				wild = append(wild, fc)
			case score < 0:
			case score > best:
				best, specific = score, []*listener.FilterChain{fc}
			case score == best:
				specific = append(specific, fc)
			}
		}
		if len(specific) > 0 {
			cands = specific
		} else {
			cands = wild
		}
		if len(cands) == 0 {
			break
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return l.GetDefaultFilterChain()
}

// chainAction says what a filter chain does: TLS it terminates, then
// tcp_proxy to a cluster or HTTP; with a connection, the HTTP request is
// routed and the upstream TLS of the chosen cluster's first endpoint shown.
func (c *config) chainAction(fc *listener.FilterChain, cn *conn) string {
	var parts []string
	terminated := false
	if ts := fc.GetTransportSocket(); ts != nil && ts.GetName() != "envoy.transport_sockets.raw_buffer" {
		d := &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(d); err != nil {
			return "socket " + ts.GetTypedConfig().GetTypeUrl()
		}
		terminated = true
		parts = append(parts, "terminate "+downstreamTLS(d))
		switch {
		case cn != nil && !cn.tls:
			return strings.Join(append(parts, "plaintext into TLS: handshake fails"), "; ")
		case cn != nil && cn.kind == "app-tls" && d.GetRequireClientCertificate().GetValue():
			return strings.Join(append(parts, "no client certificate: handshake fails"), "; ")
		}
	}
	fs := fc.GetFilters()
	if len(fs) == 0 {
		return strings.Join(append(parts, "no filters: connection closed"), "; ")
	}
	last := fs[len(fs)-1]
	switch {
	case strings.HasSuffix(last.GetTypedConfig().GetTypeUrl(), "tcp_proxy.v3.TcpProxy"):
		tp := &tcpproxy.TcpProxy{}
		_ = last.GetTypedConfig().UnmarshalTo(tp)
		name := tp.GetCluster()
		if wc := tp.GetWeightedClusters(); wc != nil && len(wc.GetClusters()) > 0 {
			name = wc.GetClusters()[0].GetName()
		}
		parts = append(parts, "tcp -> "+c.upstream(name, nil, cn))
	case strings.HasSuffix(last.GetTypedConfig().GetTypeUrl(), "http_connection_manager.v3.HttpConnectionManager"):
		m := &hcm.HttpConnectionManager{}
		_ = last.GetTypedConfig().UnmarshalTo(m)
		if cn != nil && cn.tls && !terminated {
			// TLS bytes reach an HTTP codec that does not terminate them.
			parts = append(parts, "http: TLS bytes into HTTP codec: fails (400/reset)")
			break
		}
		parts = append(parts, "http "+c.httpAction(m, cn))
	default:
		parts = append(parts, "filter "+last.GetName())
	}
	return strings.Join(parts, "; ")
}

func (c *config) httpAction(m *hcm.HttpConnectionManager, cn *conn) string {
	rc := m.GetRouteConfig()
	if name := m.GetRds().GetRouteConfigName(); name != "" {
		rc = c.routes[name]
		if cn == nil {
			return "rds " + name
		}
	}
	if cn == nil {
		return "inline routes"
	}
	if rc == nil {
		return "-> no route config"
	}
	host := cn.host
	if host == "" {
		host = "x"
	}
	if h, port, ok := strings.Cut(host, ":"); ok && (m.GetStripAnyHostPort() || rc.GetIgnorePortInHostMatching() || (m.GetStripMatchingHostPort() && port == fmt.Sprint(cn.dst.Port()))) {
		host = h
	}
	vh := pickVirtualHost(rc, host)
	if vh == nil {
		return "-> 404 (no route)"
	}
	for _, r := range vh.GetRoutes() {
		if !matchesRoot(r.GetMatch()) {
			continue
		}
		switch a := r.GetAction().(type) {
		case *route.Route_Route:
			name := a.Route.GetCluster()
			if wc := a.Route.GetWeightedClusters(); wc != nil && len(wc.GetClusters()) > 0 {
				name = wc.GetClusters()[0].GetName()
			}
			return "-> " + c.upstream(name, routeALPN(r, vh, m), cn)
		case *route.Route_DirectResponse:
			return fmt.Sprintf("-> direct response %d", a.DirectResponse.GetStatus())
		case *route.Route_Redirect:
			return "-> redirect"
		}
		return "-> route without action"
	}
	return "-> 404 (no route)"
}

// pickVirtualHost follows Envoy's domain match: exact, then longest suffix
// wildcard, then longest prefix wildcard, then "*".
func pickVirtualHost(rc *route.RouteConfiguration, host string) *route.VirtualHost {
	var best *route.VirtualHost
	bestScore := -1
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			score := -1
			switch {
			case d == host:
				score = 3000
			case d == "*":
				score = 0
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]):
				score = 2000 + len(d)
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]):
				score = 1000 + len(d)
			}
			if score > bestScore {
				best, bestScore = vh, score
			}
		}
	}
	return best
}

func matchesRoot(m *route.RouteMatch) bool {
	if len(m.GetHeaders()) > 0 || len(m.GetQueryParameters()) > 0 {
		return false
	}
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		return strings.HasPrefix("/", p.Prefix)
	case *route.RouteMatch_Path:
		return p.Path == "/"
	case *route.RouteMatch_SafeRegex:
		return p.SafeRegex.GetRegex() == ".*" || p.SafeRegex.GetRegex() == "/.*"
	}
	return true
}

var quoted = regexp.MustCompile(`'([^']*)'`)

// routeALPN is the upstream ALPN a set_filter_state on
// envoy.network.application_protocols enabled on this route sets for an
// HTTP/1.1 request, nil when none is. Both configs write its value either
// as a constant or as one CEL shape, protocol == 'HTTP/2' ? A :
// (protocol == 'HTTP/1.0' ? B : C), whose HTTP/1.1 answer is C.
func routeALPN(r *route.Route, vh *route.VirtualHost, m *hcm.HttpConnectionManager) []string {
	for _, hf := range m.GetHttpFilters() {
		cfg := &setfs.Config{}
		if hf.GetTypedConfig().UnmarshalTo(cfg) != nil {
			continue
		}
		enabled := !hf.GetDisabled()
		if pf := r.GetTypedPerFilterConfig()[hf.GetName()]; pf != nil {
			fcfg := &route.FilterConfig{}
			if pf.UnmarshalTo(fcfg) == nil {
				enabled = !fcfg.GetDisabled()
				if fcfg.GetConfig() != nil {
					_ = fcfg.GetConfig().UnmarshalTo(cfg)
				}
			} else if pf.UnmarshalTo(cfg) == nil {
				enabled = true
			}
		} else if pf := vh.GetTypedPerFilterConfig()[hf.GetName()]; pf != nil {
			enabled = true
		}
		if !enabled {
			continue
		}
		for _, v := range cfg.GetOnRequestHeaders() {
			if v.GetObjectKey() != "envoy.network.application_protocols" {
				continue
			}
			f := v.GetFormatString().GetTextFormatSource().GetInlineString()
			if f == "" {
				//lint:ignore SA1019 istiod may still write the deprecated text_format; the simulation reads what it sends
				f = v.GetFormatString().GetTextFormat()
			}
			if strings.Contains(f, "%CEL(") {
				q := quoted.FindAllStringSubmatch(f, -1)
				if len(q) == 0 {
					return []string{"unknown:" + f}
				}
				f = q[len(q)-1][1]
			}
			return strings.Split(f, ",")
		}
	}
	return nil
}

// upstream describes where a cluster sends the connection or request.
func (c *config) upstream(name string, alpn []string, cn *conn) string {
	cl := c.clusters[name]
	switch {
	case name == "":
		return "no cluster"
	case cl == nil:
		return name + " (missing: 503)"
	case strings.HasPrefix(name, "inbound|"):
		// Istio's are ORIGINAL_DST clusters, meshtls's static to the app:
		// both reach the local app.
		return name + " (local app) " + socketSummary(cl.GetTransportSocket(), nil)
	case cl.GetType() == cluster.Cluster_ORIGINAL_DST || name == "PassthroughCluster" || strings.HasPrefix(name, "InboundPassthroughCluster"):
		return name + " (original destination) " + socketSummary(cl.GetTransportSocket(), nil)
	}
	eps := c.endpointsOf(name)
	if len(eps) == 0 {
		return name + " (no endpoints: 503)"
	}
	return name + " " + eps[0].name + " " + socketSummary(socketFor(cl, eps[0].md), alpn)
}
