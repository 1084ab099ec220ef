package translate

import (
	"fmt"
	"slices"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
)

// ALPN values of Istio's inbound filter chain matching
// (pilot/pkg/networking/core/filterchain_options.go).
var (
	// allIstioMtlsALPNs: what an Istio client sidecar offers with mTLS.
	allIstioMtlsALPNs = []string{"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"}
	// mtlsHTTPALPNs: an Istio client that detected HTTP.
	mtlsHTTPALPNs = []string{"istio-http/1.0", "istio-http/1.1", "istio-h2"}
	// plaintextHTTPALPNs: what http_inspector reports for plaintext HTTP.
	plaintextHTTPALPNs = []string{"http/1.0", "http/1.1", "h2c"}
)

// Server ALPN of terminated mTLS (pilot/pkg/networking/util/util.go,
// ALPNDownstream for HTTP, ALPNDownstreamWithMxc for TCP; derived).
var (
	alpnDownstreamHTTP = []string{"h2", "http/1.1"}
	alpnDownstreamTCP  = []string{"istio-peer-exchange", "h2", "http/1.1"}
)

const (
	transportTLS = "tls"        // set by tls_inspector
	transportRaw = "raw_buffer" // anything else
)

// buildSidecar emits a sidecar's outbound and inbound side.
func (b *builder) buildSidecar() {
	targets := b.sidecarTargets()
	for _, t := range targets {
		b.buildTargetClusters(t)
		b.targetPorts[t.host] = append(b.targetPorts[t.host], t.port)
	}
	for _, c := range passthroughClusters() {
		b.addCluster(c)
	}
	b.buildOutbound(listened(targets))
	b.buildInbound()
}

// buildInbound is the virtualInbound listener (0.0.0.0:15006): captured
// inbound connections keep their original destination (pod IP:port), which
// the original_dst listener filter restores so filter chains match on the
// destination port (pilot/pkg/networking/core/listener_builder.go,
// buildInboundListeners / inbound.go). Unlike virtualOutbound it does not
// set use_original_dst: there are no per-port inbound listeners to hand
// connections to, and handing off would land on the outbound 0.0.0.0_<port>
// listeners.
func (b *builder) buildInbound() {
	var chains []*listener.FilterChain
	// Chains of their own only for the ports Services declare, with the
	// Service port's protocol; any other port the app listens on takes the
	// passthrough chains below (pilot/pkg/networking/core/listener_inbound.go,
	// buildInboundChainConfigs, getFilterChainsByServicePort).
	declared := map[uint32]bool{}
	for _, p := range b.m.InboundPorts(b.proxy) {
		declared[p.Port] = true
		mode, by := b.m.PeerAuthDecision(b.proxy, p.Port)
		b.decide(mesh.InboundDecisionKey(p.Port), mesh.Decision{PeerAuthentication: by})
		b.addCluster(inboundCluster(p.Port, p.Protocol))
		port := p.Port
		chains = append(chains, b.inboundChains(&port, p.Protocol, mode, InboundClusterName(p.Port))...)
	}
	// Connections to ports that are not declared go to the app
	// (InboundPassthroughCluster, ORIGINAL_DST) with the chains of an
	// auto-detected port: Istio mTLS with an istio-http/* ALPN and
	// detected plaintext HTTP get HTTP handling (the catch-all HTTP chain),
	// the rest is proxied as TCP (pilot/pkg/networking/core/listener_inbound.go,
	// buildInboundPassthroughChains: protocol Unsupported, chain name
	// virtualInbound-catchall-http; filterchain_options.go). The mode is
	// the workload's, except on an undeclared port that a port-level
	// setting names: that port gets passthrough chains of its own under
	// its mode (pilot/pkg/networking/plugin/authn/authentication.go,
	// ForPassthrough, needPerPortPassthroughFilterChain).
	for _, p := range b.m.PortLevelMTLSPorts(b.proxy) {
		if declared[p] {
			continue
		}
		mode, by := b.m.PeerAuthDecision(b.proxy, p)
		b.decide(mesh.InboundDecisionKey(p), mesh.Decision{PeerAuthentication: by})
		port := p
		chains = append(chains, b.inboundChains(&port, mesh.ProtoAuto, mode, InboundPassthroughCluster)...)
	}
	passMode, passBy := b.m.PeerAuthDecision(b.proxy, 0)
	b.decide(mesh.InboundDecisionKey(0), mesh.Decision{PeerAuthentication: passBy})
	chains = append(chains, b.inboundChains(nil, mesh.ProtoAuto, passMode, InboundPassthroughCluster)...)

	name := VirtualInboundListener
	l := &listener.Listener{
		Name:            name,
		Address:         tcpAddress("0.0.0.0", InboundCapturePort),
		ListenerFilters: inboundListenerFilters(chains),
		FilterChains:    chains,
		AccessLog:       listenerAccessLogs(b.proxyName(), accesslog.DirectionInbound, name),
	}
	noDetectionTimeout(l)
	b.listeners = append(b.listeners, l)
}

// inboundCluster forwards to the app on localhost, never with TLS: "local
// inbound traffic is forwarded as is" (istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/;
// pilot/pkg/networking/core/cluster.go, buildInboundClusters).
func inboundCluster(port uint32, proto mesh.Protocol) *cluster.Cluster {
	c := staticHostCluster(InboundClusterName(port), "127.0.0.1", port)
	if o := upstreamHTTPOptions(proto); o != nil && proto != mesh.ProtoHTTP {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptsKey: mustAny(o)}
	}
	return c
}

// inboundChain is one filter chain option of filterchain_options.go.
type inboundChain struct {
	suffix    string   // chain name suffix
	transport string   // "", tls, raw_buffer
	alpn      []string // application_protocols match
	mtls      bool     // terminate Istio mTLS
	http      bool     // HCM (else tcp_proxy)
}

// inboundChainOptions is Istio's table of filter chain match options per
// mode and port protocol (pilot/pkg/networking/core/filterchain_options.go:
// inboundStrict*/inboundPermissive*/inboundPlainText* FilterChainMatchOptions).
func inboundChainOptions(mode mesh.MTLSMode, proto mesh.Protocol) []inboundChain {
	httpPort := proto.IsHTTP()
	auto := proto == mesh.ProtoAuto
	switch mode {
	case mesh.ModeStrict:
		// Only TLS, client certificate required.
		switch {
		case httpPort:
			return []inboundChain{{suffix: "mtls", transport: transportTLS, mtls: true, http: true}}
		case auto:
			return []inboundChain{
				{suffix: "mtls-http", transport: transportTLS, alpn: mtlsHTTPALPNs, mtls: true, http: true},
				{suffix: "mtls-tcp", transport: transportTLS, mtls: true},
			}
		default:
			return []inboundChain{{suffix: "mtls", transport: transportTLS, mtls: true}}
		}
	case mesh.ModeDisable:
		// Plaintext only; a chain without transport match hands TLS to the
		// app as bytes (TCP) or to the HTTP codec (HTTP ports).
		switch {
		case httpPort:
			return []inboundChain{{suffix: "plaintext", http: true}}
		case auto:
			return []inboundChain{
				{suffix: "plaintext-http", transport: transportRaw, alpn: plaintextHTTPALPNs, http: true},
				{suffix: "plaintext-tcp", transport: transportRaw},
				{suffix: "tls-passthrough", transport: transportTLS},
			}
		default:
			return []inboundChain{{suffix: "plaintext"}}
		}
	default: // PERMISSIVE
		switch {
		case httpPort:
			// No chain for non-Istio TLS on a port declared HTTP.
			return []inboundChain{
				{suffix: "mtls", transport: transportTLS, alpn: allIstioMtlsALPNs, mtls: true, http: true},
				{suffix: "plaintext", transport: transportRaw, http: true},
			}
		case auto:
			return []inboundChain{
				{suffix: "mtls-http", transport: transportTLS, alpn: mtlsHTTPALPNs, mtls: true, http: true},
				{suffix: "mtls-tcp", transport: transportTLS, alpn: []string{"istio", "istio-peer-exchange"}, mtls: true},
				{suffix: "plaintext-http", transport: transportRaw, alpn: plaintextHTTPALPNs, http: true},
				{suffix: "plaintext-tcp", transport: transportRaw},
				{suffix: "tls-passthrough", transport: transportTLS},
			}
		default:
			// Other TLS (the app's own) passes through untouched.
			return []inboundChain{
				{suffix: "mtls", transport: transportTLS, alpn: allIstioMtlsALPNs, mtls: true},
				{suffix: "plaintext", transport: transportRaw},
				{suffix: "tls-passthrough", transport: transportTLS},
			}
		}
	}
}

// inboundChains builds the chains of one port (nil: the passthrough chains
// for any other port).
func (b *builder) inboundChains(port *uint32, proto mesh.Protocol, mode mesh.MTLSMode, clusterName string) []*listener.FilterChain {
	label := "passthrough"
	if port != nil {
		label = fmt.Sprint(*port)
	}
	var out []*listener.FilterChain
	for _, o := range inboundChainOptions(mode, proto) {
		name := fmt.Sprintf("inbound|%s|%s", label, o.suffix)
		match := &listener.FilterChainMatch{TransportProtocol: o.transport, ApplicationProtocols: o.alpn}
		if port != nil {
			match.DestinationPort = wrapperspb.UInt32(*port)
		}
		fc := &listener.FilterChain{Name: name, FilterChainMatch: match}
		if o.mtls {
			alpn := alpnDownstreamTCP
			if o.http {
				alpn = alpnDownstreamHTTP
			}
			fc.TransportSocket = b.inboundMTLSSocket(alpn)
		}
		if o.http {
			fc.Filters = []*listener.Filter{b.inboundHCM(name, clusterName)}
		} else {
			fc.Filters = []*listener.Filter{tcpProxyFilter(name, clusterName, nil, accessLogs(b.proxyName(), accesslog.DirectionInbound, VirtualInboundListener))}
		}
		out = append(out, fc)
	}
	return out
}

// inboundMTLSCiphers are the TLS 1.2 cipher suites Istio's inbound mTLS
// accepts (pilot/pkg/security/authn/utils/utils.go, SupportedCiphers;
// meshConfig.meshMTLS.cipherSuites unset). TLS 1.3 suites are not
// configurable in Envoy and stay Envoy's.
var inboundMTLSCiphers = []string{
	"ECDHE-ECDSA-AES256-GCM-SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-AES128-GCM-SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256",
	"AES256-GCM-SHA384",
	"AES128-GCM-SHA256",
}

// inboundMTLSSocket terminates Istio mTLS: workload cert, client cert
// required, verified against the mesh root and to carry a SPIFFE URI in the
// mesh's trust domain (prefix spiffe://cluster.local/), TLS 1.2–1.3 with
// Istio's TLS 1.2 cipher suites (pilot/pkg/security/authn/utils/utils.go,
// BuildInboundTLS; the trust domains from
// pilot/pkg/networking/plugin/authn/util.go, TrustDomainsForValidation, as
// prefix matchers by pilot/pkg/security/model/authentication.go,
// ApplyToCommonTLSContext).
func (b *builder) inboundMTLSSocket(alpn []string) *core.TransportSocket {
	b.needSecret(SecretDefault, secretNeed{})
	b.needSecret(SecretRootCA, secretNeed{})
	params := tlsParams12to13()
	params.CipherSuites = slices.Clone(inboundMTLSCiphers)
	// The mesh config's meshMTLS: its cipherSuites replace Istio's list,
	// minProtocolVersion TLSV1_3 raises the floor, any other stays at 1.2
	// (pilot/pkg/security/authn/utils/utils.go, BuildInboundTLS and
	// GetMinTLSVersion; policy_applier.go, InboundMTLSSettings).
	mtls := b.m.MeshConfig().GetMeshMTLS()
	if mtls.GetCipherSuites() != nil {
		params.CipherSuites = slices.Clone(mtls.GetCipherSuites())
	}
	if mtls.GetMinProtocolVersion() == meshconfig.MeshConfig_TLSConfig_TLSV1_3 {
		params.TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_3
	}
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      params,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsConfig(SecretDefault)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
						SanType: tlsv3.SubjectAltNameMatcher_URI,
						Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "spiffe://" + mesh.TrustDomain + "/"}},
					}}},
					ValidationContextSdsSecretConfig: sdsConfig(SecretRootCA),
				},
			},
			AlpnProtocols: append([]string(nil), alpn...),
		},
	}
	return tlsSocket(ctx)
}

// inboundHCM routes every request to the local app. The app sees
// X-Forwarded-Client-Cert with the peer's SPIFFE URI when mTLS was
// terminated (pilot/pkg/networking/core/listener.go,
// buildSidecarInboundHTTPOpts: APPEND_FORWARD and SetCurrentClientCertDetails
// Subject, URI, DNS).
func (b *builder) inboundHCM(chainName, clusterName string) *listener.Filter {
	rc := &route.RouteConfiguration{
		Name:             clusterName,
		ValidateClusters: wrapperspb.Bool(false),
		VirtualHosts: []*route.VirtualHost{{
			Name:    "inbound|http|" + chainName,
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Name:  "default",
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName},
					// Inbound routes have no timeout (pilot/pkg/networking/core/route/route.go,
					// BuildDefaultHTTPInboundRoute).
					Timeout: durationpb.New(0),
				}},
			}},
		}},
	}
	h := &hcm.HttpConnectionManager{
		StatPrefix:     chainName,
		CodecType:      hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    []*hcm.HttpFilter{routerFilter()},
		AccessLog:      accessLogs(b.proxyName(), accesslog.DirectionInbound, VirtualInboundListener),
		// XFCC: what the app reads to learn the verified peer.
		ForwardClientCertDetails: hcm.HttpConnectionManager_APPEND_FORWARD,
		SetCurrentClientCertDetails: &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true),
			Uri:     true,
			Dns:     true,
		},
	}
	return hcmFilter(h)
}
