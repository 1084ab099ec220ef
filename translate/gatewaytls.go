package translate

import (
	"fmt"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshconfig "istio.io/api/mesh/v1alpha1"
	networkingapi "istio.io/api/networking/v1alpha3"

	"github.com/meshtls/meshtls/mesh"
)

// terminatedChain ends TLS for one server (matched by SNI) and then speaks
// HTTP (HTTPS servers: http routes) or TCP (TLS servers: tcp routes)
// (pilot/pkg/networking/core/gateway.go, createGatewayHTTPFilterChainOpts / createGatewayTCPFilterChainOpts).
func (b *builder) terminatedChain(s *gwServer, logs []*accesslogv3.AccessLog) *listener.FilterChain {
	fc := &listener.FilterChain{
		Name:             fmt.Sprintf("%s|%s|%s", s.ref, s.srv.GetPort().GetName(), strings.Join(s.sniNames(), ",")),
		FilterChainMatch: &listener.FilterChainMatch{ServerNames: s.sniNames(), TransportProtocol: transportTLS},
	}
	httpOver := s.proto == mesh.ProtoHTTPS
	fc.TransportSocket = b.serverTLSSocket(s, httpOver)
	if httpOver {
		// Named for the server's own port (gateway.go, gatewayRDSRouteName).
		rc := b.gatewayRouteConfig(fmt.Sprintf("https.%d.%s.%s.%s", s.port(), s.srv.GetPort().GetName(), s.gw.Name, s.gw.Namespace), []*gwServer{s})
		b.routes = append(b.routes, rc)
		fc.Filters = []*listener.Filter{b.gatewayHCM(s.listen, rc.Name, logs)}
		return fc
	}
	tcp := b.gatewayTCPChain(s, fc, logs)
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
	// The mesh config's tlsDefaults first, for SIMPLE, MUTUAL and
	// OPTIONAL_MUTUAL servers; the server's own settings win
	// (pilot/pkg/networking/core/listener.go, BuildListenerTLSContext:
	// applyDownstreamTLSDefaults, then applyServerTLSSettings).
	if m := t.GetMode(); m == networkingapi.ServerTLSSettings_SIMPLE || m == networkingapi.ServerTLSSettings_MUTUAL || m == networkingapi.ServerTLSSettings_OPTIONAL_MUTUAL {
		d := b.m.MeshConfig().GetTlsDefaults()
		if len(d.GetEcdhCurves()) > 0 {
			tlsParamsOrNew(common).EcdhCurves = d.GetEcdhCurves()
		}
		if len(d.GetCipherSuites()) > 0 {
			tlsParamsOrNew(common).CipherSuites = d.GetCipherSuites()
		}
		if d.GetMinProtocolVersion() == meshconfig.MeshConfig_TLSConfig_TLSV1_3 {
			tlsParamsOrNew(common).TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_3
		} else if d.GetMinProtocolVersion() != meshconfig.MeshConfig_TLSConfig_TLS_AUTO {
			tlsParamsOrNew(common).TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_2
		}
	}
	if v, ok := tlsVersion(t.GetMinProtocolVersion()); ok {
		tlsParamsOrNew(common).TlsMinimumProtocolVersion = v
	}
	if v, ok := tlsVersion(t.GetMaxProtocolVersion()); ok {
		tlsParamsOrNew(common).TlsMaximumProtocolVersion = v
	}
	if len(t.GetCipherSuites()) > 0 {
		tlsParamsOrNew(common).CipherSuites = t.GetCipherSuites()
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
func (b *builder) gatewayTCPChain(s *gwServer, base *listener.FilterChain, logs []*accesslogv3.AccessLog) *listener.FilterChain {
	for _, vh := range b.boundVirtualServices(s) {
		w := b.tcpRoute(vh.vs, s.port(), s.ref)
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

func tlsParamsOrNew(c *tlsv3.CommonTlsContext) *tlsv3.TlsParameters {
	if c.TlsParams == nil {
		c.TlsParams = &tlsv3.TlsParameters{}
	}
	return c.TlsParams
}
