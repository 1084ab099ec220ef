package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rawbuffer "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/mesh"
)

const (
	connectTimeout = 10 * time.Second // Istio's default meshConfig.connectTimeout
	// systemRoots is where Istio points SIMPLE/MUTUAL origination without a
	// CA (pilot/pkg/networking/core/cluster_tls.go, VERIFY_CERTIFICATE_AT_CLIENT:
	// "/etc/ssl/certs/ca-certificates.crt", security.DefaultRootCertFilePath).
	systemRoots = "/etc/ssl/certs/ca-certificates.crt"
	httpOptsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// Client ALPN of ISTIO_MUTUAL clusters: util.ALPNInMeshWithMxc, and
// util.ALPNInMeshH2WithMxc for HTTP/2 clusters (pilot/pkg/networking/util/util.go;
// cluster_tls.go, buildUpstreamClusterTLSContext). HTTP requests replace it
// per request (alpn.go), so the cluster's list is what TCP proxying offers.
var (
	alpnIstioTCP = []string{"istio-peer-exchange", "istio"}
	alpnIstioH2  = []string{"istio-peer-exchange", "istio", "h2"}
)

// buildTargetClusters emits outbound|port||host and one cluster per subset
// of the DestinationRule that applies to the host (pilot/pkg/networking/core/cluster.go
// buildOutboundClusters, cluster_builder.go applyDestinationRule).
func (b *builder) buildTargetClusters(t *target) {
	dr := b.m.DestinationRuleFor(t.host, b.proxy)
	if dr != nil {
		b.checkDestinationRule(dr)
	}
	b.addCluster(b.targetCluster(t, "", nil))
	if dr == nil {
		return
	}
	for _, ss := range dr.Spec.GetSubsets() {
		b.addCluster(b.targetCluster(t, ss.GetName(), ss.GetLabels()))
	}
}

func drName(dr *networking.DestinationRule) string {
	return fmt.Sprintf("DestinationRule %s/%s", dr.Namespace, dr.Name)
}

// checkDestinationRule rejects the parts of a DestinationRule meshtls does
// not translate; the TLS settings are read through mesh.ClientTLS.
func (b *builder) checkDestinationRule(dr *networking.DestinationRule) {
	res := drName(dr)
	check := func(path string, tp *networkingapi.TrafficPolicy) {
		if tp == nil {
			return
		}
		// loadBalancer, connectionPool, outlierDetection and retryBudget
		// are translated (translate_policy.go); these change where calls
		// go or what goes on the wire and are not modelled.
		checkPolicyParts(b, res, path, tp.GetLoadBalancer(), tp.GetConnectionPool())
		if tp.GetTunnel() != nil {
			b.unsupported(res, path+".tunnel")
		}
		if tp.GetProxyProtocol() != nil {
			b.unsupported(res, path+".proxyProtocol")
		}
		b.checkClientTLS(res, path+".tls", tp.GetTls())
		for i, pl := range tp.GetPortLevelSettings() {
			p := fmt.Sprintf("%s.portLevelSettings[%d]", path, i)
			checkPolicyParts(b, res, p, pl.GetLoadBalancer(), pl.GetConnectionPool())
			b.checkClientTLS(res, p+".tls", pl.GetTls())
		}
	}
	check("spec.trafficPolicy", dr.Spec.GetTrafficPolicy())
	for i, ss := range dr.Spec.GetSubsets() {
		check(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), ss.GetTrafficPolicy())
	}
}

// checkPolicyParts refuses the load-balancer and connection-pool settings
// that change where a call goes or the protocol on the wire (and with it the
// ALPN of the TLS handshake), which meshtls does not model: PASSTHROUGH
// load balancing (an ORIGINAL_DST cluster, cluster_traffic_policy.go
// applyLoadBalancer), h2UpgradePolicy UPGRADE and useClientProtocol
// (applyH2Upgrade, setUseDownstreamProtocol).
func checkPolicyParts(b *builder, res, path string, lb *networkingapi.LoadBalancerSettings, cp *networkingapi.ConnectionPoolSettings) {
	if lb.GetSimple() == networkingapi.LoadBalancerSettings_PASSTHROUGH {
		b.fail(fmt.Errorf("%s: %s.loadBalancer.simple: PASSTHROUGH (connect to the address the app dialled) changes where calls go and is not modelled by meshtls; remove it", res, path))
	}
	if cp.GetHttp().GetH2UpgradePolicy() == networkingapi.ConnectionPoolSettings_HTTPSettings_UPGRADE {
		b.fail(fmt.Errorf("%s: %s.connectionPool.http.h2UpgradePolicy: UPGRADE changes the upstream protocol (and its TLS ALPN) and is not modelled by meshtls; remove it or use DO_NOT_UPGRADE", res, path))
	}
	if cp.GetHttp().GetUseClientProtocol() {
		b.fail(fmt.Errorf("%s: %s.connectionPool.http.useClientProtocol changes the upstream protocol (and its TLS ALPN) and is not modelled by meshtls; remove it", res, path))
	}
}

func (b *builder) checkClientTLS(res, path string, tls *networkingapi.ClientTLSSettings) {
	if tls == nil {
		return
	}
	if tls.GetCaCrl() != "" {
		b.unsupported(res, path+".caCrl")
	}
}

// targetCluster is one outbound cluster: endpoints (subset-filtered), HTTP
// protocol options and the TLS the client originates.
func (b *builder) targetCluster(t *target, subset string, labels map[string]string) *cluster.Cluster {
	name := OutboundClusterName(t.port, subset, t.host)
	c := &cluster.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(connectTimeout),
		// Envoy's default; Istio's default is LEAST_REQUEST, which needs no
		// config either. Round robin keeps multi-endpoint checks predictable.
		LbPolicy: cluster.Cluster_ROUND_ROBIN,
	}
	tls := b.m.ClientTLS(t.host, t.port, subset, b.proxy)
	// Auto mTLS applies only when no DestinationRule sets tls, and not at
	// all when the mesh config turns it off (enableAutoMtls: false)
	// (pilot/pkg/networking/core/cluster_tls.go, buildUpstreamTLSSettings).
	auto := tls == nil
	autoIstio := auto && b.m.AutoMTLS() && !t.external && b.serviceMTLS(t) != mesh.ModeDisable
	b.decide(name, mesh.Decision{DestinationRule: b.drDecision(t, tls, autoIstio)})

	var eps []endpointRef
	for _, e := range t.eps {
		if subsetMatches(labels, e.labels) {
			eps = append(eps, e)
		}
	}
	switch t.resolve {
	case resolveNone:
		// resolution NONE: connect to the address the app dialled
		// (pilot/pkg/networking/core/cluster.go, ORIGINAL_DST for NONE).
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}
		c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
	case resolveDNS:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
		c.DnsLookupFamily = cluster.Cluster_V4_ONLY
		c.LoadAssignment = b.loadAssignment(name, t, eps, tls, auto)
	default:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
		c.LoadAssignment = b.loadAssignment(name, t, eps, tls, auto)
	}

	httpOpts := upstreamHTTPOptions(t.proto)
	switch {
	case tls != nil:
		ts, autoSNI := b.originationTLS(t, subset, tls)
		if ts != nil {
			c.TransportSocket = ts
		}
		if autoSNI != nil {
			// Istio sets auto SNI on every SIMPLE/MUTUAL cluster without sni,
			// whatever the port's protocol, sidecar or gateway
			// (pilot/pkg/networking/core/cluster_tls.go, buildUpstreamTLSContext
			// -> setAutoSniAndAutoSanValidation), and fills in HTTP/1.1 as the
			// upstream protocol Envoy requires (cluster_builder.go, build:
			// "UpstreamProtocolOptions is required field in Envoy"). A route
			// from an HCM to a TCP-class port (a gateway's HTTP server
			// sending to an HTTPS port) then sends SNI from the Host header;
			// a tcp_proxy has no Host and ignores these options, so TCP/TLS
			// traffic sends no SNI, as Istio's does.
			if httpOpts == nil {
				httpOpts = upstreamHTTPOptions(mesh.ProtoHTTP)
			}
			httpOpts.UpstreamHttpProtocolOptions = autoSNI
		}
	case autoIstio:
		// Auto mTLS: mTLS to endpoints labelled tlsMode=istio, plaintext to
		// the rest (pilot/pkg/networking/core/cluster_builder.go,
		// buildAutoMtlsSettings; transport socket names as Istio's).
		sans := t.sans
		if t.svc != nil {
			sans = b.m.ServiceAccounts(t.svc)
		}
		c.TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{
			{
				Name:            "tlsMode-istio",
				Match:           &structpb.Struct{Fields: map[string]*structpb.Value{TLSModeMetadataKey: structpb.NewStringValue(TLSModeIstio)}},
				TransportSocket: b.istioMutualSocket(IstioSNI(t.port, subset, t.host), sans, t.proto),
			},
			{
				Name:            "tlsMode-disabled",
				Match:           &structpb.Struct{},
				TransportSocket: rawBufferSocket(),
			},
		}
	}
	if m := tls.GetMode(); m == networkingapi.ClientTLSSettings_SIMPLE || m == networkingapi.ClientTLSSettings_MUTUAL {
		// Istio's per-request ALPN leaves these clusters alone (alpn.go).
		b.skipALPNOverride(name)
	}
	// The rest of the DestinationRule policy: load balancing, connection
	// pool, outlier detection (translate_policy.go).
	httpOpts = applyTrafficPolicy(c, httpOpts, b.m.TrafficPolicy(t.host, t.port, subset, b.proxy))
	if httpOpts != nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptsKey: mustAny(httpOpts)}
	}
	return c
}

// serviceMTLS is the mode Istio infers for a whole service under auto mTLS:
// mesh- and namespace-level PeerAuthentication of the service's namespace
// (pilot/pkg/model/push_context.go, BestEffortInferServiceMTLSMode).
func (b *builder) serviceMTLS(t *target) mesh.MTLSMode {
	return b.m.NamespaceMTLS(t.ns)
}

func subsetMatches(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// loadAssignment lists the endpoints inline. An endpoint gets the
// tlsMode=istio transport socket match metadata when it has a sidecar
// (pilot/pkg/networking/util/util.go, BuildLbEndpointMetadata); under auto
// mTLS Istio strips it from endpoints whose own PeerAuthentication for the
// port is DISABLE (pilot/pkg/xds/endpoints/mtls_checker.go, isMtlsDisabled).
func (b *builder) loadAssignment(name string, t *target, eps []endpointRef, tls *networkingapi.ClientTLSSettings, auto bool) *endpoint.ClusterLoadAssignment {
	la := &endpoint.ClusterLoadAssignment{ClusterName: name}
	var lbs []*endpoint.LbEndpoint
	for _, e := range eps {
		lb := &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: tcpAddress(e.addr, e.port),
		}}}
		if e.hasSidecar() && (!auto || e.w == nil || b.m.EffectiveMTLS(e.w, e.port) != mesh.ModeDisable) {
			lb.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
				TransportSocketMatchNS: {Fields: map[string]*structpb.Value{TLSModeMetadataKey: structpb.NewStringValue(TLSModeIstio)}},
			}}
		}
		lbs = append(lbs, lb)
	}
	la.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return la
}

// upstreamHTTPOptions: HTTP/1.1 for HTTP, HTTP/2 for HTTP2 and gRPC, the
// downstream's protocol for auto-detected ports
// (pilot/pkg/networking/core/cluster_builder.go, setUpstreamProtocol).
// TCP-class ports get none.
func upstreamHTTPOptions(p mesh.Protocol) *httpopts.HttpProtocolOptions {
	switch {
	case p == mesh.ProtoHTTP2 || p == mesh.ProtoGRPC:
		return &httpopts.HttpProtocolOptions{UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
			}}}
	case p.IsHTTP():
		return &httpopts.HttpProtocolOptions{UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &core.Http1ProtocolOptions{}},
			}}}
	case p == mesh.ProtoAuto:
		return &httpopts.HttpProtocolOptions{UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpopts.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &core.Http1ProtocolOptions{},
				Http2ProtocolOptions: &core.Http2ProtocolOptions{},
			}}}
	}
	return nil
}

func rawBufferSocket() *core.TransportSocket {
	return &core.TransportSocket{
		Name:       "envoy.transport_sockets.raw_buffer",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbuffer.RawBuffer{})},
	}
}

func tlsSocket(m proto.Message) *core.TransportSocket {
	return &core.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(m)},
	}
}

func sdsConfig(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

func tlsParams12to13() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
	}
}

// sanMatchers matches SANs exactly: spiffe:// and other URIs as URI SANs,
// the rest as DNS SANs (pilot/pkg/networking/util/util.go,
// StringToExactMatch; security.istio.io SAN types, derived).
func sanMatchers(sans []string) []*tlsv3.SubjectAltNameMatcher {
	var out []*tlsv3.SubjectAltNameMatcher
	for _, s := range sans {
		typ := tlsv3.SubjectAltNameMatcher_DNS
		if strings.Contains(s, "://") {
			typ = tlsv3.SubjectAltNameMatcher_URI
		}
		out = append(out, &tlsv3.SubjectAltNameMatcher{
			SanType: typ,
			Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}},
		})
	}
	return out
}

// istioMutualSocket is ISTIO_MUTUAL origination: workload cert "default",
// mesh root "ROOTCA", TLS 1.2–1.3, Istio SNI, server SAN = service accounts
// (pilot/pkg/networking/core/cluster_tls.go, buildIstioMutualTLS;
// pilot/pkg/security/model/authentication.go, ConstructSdsSecretConfig).
func (b *builder) istioMutualSocket(sni string, sans []string, proto mesh.Protocol) *core.TransportSocket {
	b.needSecret(SecretDefault, secretNeed{})
	b.needSecret(SecretRootCA, secretNeed{})
	alpn := alpnIstioTCP
	if proto == mesh.ProtoHTTP2 || proto == mesh.ProtoGRPC {
		alpn = alpnIstioH2
	}
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      tlsParams12to13(),
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsConfig(SecretDefault)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sanMatchers(sans)},
					ValidationContextSdsSecretConfig: sdsConfig(SecretRootCA),
				},
			},
			AlpnProtocols: slices.Clone(alpn),
		},
	}
	return tlsSocket(ctx)
}

// originationTLS translates a DestinationRule tls block
// (pilot/pkg/networking/core/cluster_tls.go, applyUpstreamTLSSettings /
// buildUpstreamTLSSettings). It returns the socket (nil: plaintext) and, for
// SIMPLE/MUTUAL without sni, the auto SNI options of HTTP clusters.
func (b *builder) originationTLS(t *target, subset string, tls *networkingapi.ClientTLSSettings) (*core.TransportSocket, *core.UpstreamHttpProtocolOptions) {
	switch tls.GetMode() {
	case networkingapi.ClientTLSSettings_DISABLE:
		return nil, nil
	case networkingapi.ClientTLSSettings_ISTIO_MUTUAL:
		sni := tls.GetSni()
		if sni == "" {
			sni = IstioSNI(t.port, subset, t.host)
		}
		sans := tls.GetSubjectAltNames()
		if len(sans) == 0 {
			if t.svc != nil {
				sans = b.m.ServiceAccounts(t.svc)
			} else {
				sans = t.sans
			}
		}
		return b.istioMutualSocket(sni, sans, t.proto), nil
	case networkingapi.ClientTLSSettings_SIMPLE, networkingapi.ClientTLSSettings_MUTUAL:
	default:
		b.fail(fmt.Errorf("client TLS for %s:%d: mode %v is not supported by meshtls", t.host, t.port, tls.GetMode()))
		return nil, nil
	}
	if tls.GetCredentialName() != "" && !b.proxy.Gateway && !strings.HasPrefix(tls.GetCredentialName(), "configmap://") &&
		b.m.DestinationRuleFor(t.host, b.proxy).Spec.GetWorkloadSelector() == nil {
		// A sidecar honours credentialName only from a DestinationRule with
		// a workloadSelector; otherwise Istio builds no TLS context at all
		// and the cluster sends plaintext (cluster_tls.go,
		// buildUpstreamClusterTLSContext: privilegedCredentialLookup).
		return nil, nil
	}
	// TLS 1.2-1.3, where Envoy's client default stops at 1.2
	// (cluster_tls.go, defaultUpstreamCommonTLSContext).
	common := &tlsv3.CommonTlsContext{TlsParams: tlsParams12to13()}
	// The mesh config's tlsDefaults: curves and cipher suites of SIMPLE
	// and MUTUAL origination (cluster_tls.go, constructUpstreamTLS ->
	// applyTLSDefaults; its minProtocolVersion is for servers only).
	if d := b.m.MeshConfig().GetTlsDefaults(); d != nil {
		if len(d.GetEcdhCurves()) > 0 {
			common.TlsParams.EcdhCurves = d.GetEcdhCurves()
		}
		if len(d.GetCipherSuites()) > 0 {
			common.TlsParams.CipherSuites = d.GetCipherSuites()
		}
	}
	insecure := tls.GetInsecureSkipVerify().GetValue()
	sans := tls.GetSubjectAltNames()
	autoSAN := !insecure && len(sans) == 0 // decided on the DestinationRule's own SANs
	if len(sans) == 0 && t.svc == nil {
		// A ServiceEntry host: its subjectAltNames (and its endpoints'
		// identities) when the DestinationRule gives none (cluster_tls.go,
		// constructUpstreamTLS: serviceRegistry External).
		sans = t.sans
	}
	switch {
	case insecure:
		// insecureSkipVerify: no server certificate verification at all
		// (cluster_tls.go: no validation context when InsecureSkipVerify).
	case tls.GetCaCertificates() != "":
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa:                 &core.DataSource{Specifier: &core.DataSource_Filename{Filename: tls.GetCaCertificates()}},
			MatchTypedSubjectAltNames: sanMatchers(sans),
		}}
	case tls.GetCredentialName() != "":
		// credentialName: the CA comes from <name>-cacert over SDS
		// (pilot/pkg/model/credentials, SdsCaSuffix).
		caName := CredentialCASecretName(tls.GetCredentialName())
		b.needSecret(caName, secretNeed{kind: needClientCredential, credential: tls.GetCredentialName()})
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sanMatchers(sans)},
				ValidationContextSdsSecretConfig: sdsConfig(caName),
			}}
	default:
		// No CA: the system roots (VERIFY_CERTIFICATE_AT_CLIENT, default on).
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa:                 &core.DataSource{Specifier: &core.DataSource_Filename{Filename: systemRoots}},
			MatchTypedSubjectAltNames: sanMatchers(sans),
		}}
	}
	if tls.GetMode() == networkingapi.ClientTLSSettings_MUTUAL {
		switch {
		case tls.GetCredentialName() != "":
			name := CredentialSecretName(tls.GetCredentialName())
			b.needSecret(name, secretNeed{kind: needClientCredential, credential: tls.GetCredentialName()})
			common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsConfig(name)}
		case tls.GetClientCertificate() != "" && tls.GetPrivateKey() != "":
			common.TlsCertificates = []*tlsv3.TlsCertificate{{
				CertificateChain: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: tls.GetClientCertificate()}},
				PrivateKey:       &core.DataSource{Specifier: &core.DataSource_Filename{Filename: tls.GetPrivateKey()}},
			}}
		default:
			b.fail(fmt.Errorf("client TLS MUTUAL for %s:%d needs clientCertificate and privateKey, or credentialName (Istio rejects it too)", t.host, t.port))
		}
	}
	if t.proto == mesh.ProtoHTTP2 || t.proto == mesh.ProtoGRPC {
		// cluster_tls.go: h2 ALPN for HTTP/2 clusters with SIMPLE/MUTUAL.
		common.AlpnProtocols = []string{"h2"}
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: tls.GetSni(), CommonTlsContext: common}
	var autoSNI *core.UpstreamHttpProtocolOptions
	if tls.GetSni() == "" {
		// Empty sni: SNI from the request's host, and the server cert checked
		// against it unless SANs are given or verification is off
		// (pilot/pkg/networking/core/cluster_builder.go, setAutoSniAndAutoSanValidation).
		autoSNI = &core.UpstreamHttpProtocolOptions{AutoSni: true, AutoSanValidation: autoSAN}
	}
	return tlsSocket(ctx), autoSNI
}

// staticCluster is a STATIC cluster with one address (inbound|port||).
func staticHostCluster(name, ip string, port uint32) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(connectTimeout),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: tcpAddress(ip, port),
			}}}},
		}}},
	}
}

// passthroughClusters are Istio's PassthroughCluster (ORIGINAL_DST, ALLOW_ANY
// outbound), BlackHoleCluster (STATIC, no endpoints) and
// InboundPassthroughCluster (pilot/pkg/networking/core/cluster_builder.go,
// buildDefaultPassthroughCluster, buildBlackHoleCluster, buildInboundPassthroughCluster).
func passthroughClusters() []*cluster.Cluster {
	orig := func(name string) *cluster.Cluster {
		return &cluster.Cluster{
			Name:                          name,
			ConnectTimeout:                durationpb.New(connectTimeout),
			ClusterDiscoveryType:          &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
			LbPolicy:                      cluster.Cluster_CLUSTER_PROVIDED,
			TypedExtensionProtocolOptions: map[string]*anypb.Any{httpOptsKey: mustAny(upstreamHTTPOptions(mesh.ProtoAuto))},
		}
	}
	// The inbound one connects from 127.0.0.6, which the pod's capture lets
	// through (pod/redirect.go): from the proxy's own address the
	// connection to the pod's address would be captured back into
	// virtualInbound (pilot/pkg/networking/core/cluster_builder.go,
	// buildInboundPassthroughCluster; listener_address.go,
	// InboundPassthroughBindIpv4).
	inbound := orig(InboundPassthroughCluster)
	inbound.UpstreamBindConfig = &core.BindConfig{SourceAddress: &core.SocketAddress{
		Address: InboundPassthroughBindAddress, PortSpecifier: &core.SocketAddress_PortValue{PortValue: 0},
	}}
	return []*cluster.Cluster{
		orig(PassthroughCluster),
		inbound,
		{
			Name:                 BlackHoleCluster,
			ConnectTimeout:       durationpb.New(connectTimeout),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		},
	}
}

// drDecision says what set a cluster's client TLS: the DestinationRule and
// its mode, or auto mTLS when none sets tls (cluster_builder.go,
// buildAutoMtlsSettings).
func (b *builder) drDecision(t *target, tls *networkingapi.ClientTLSSettings, autoIstio bool) string {
	dr := b.m.DestinationRuleFor(t.host, b.proxy)
	switch {
	case tls != nil && dr != nil:
		return fmt.Sprintf("%s/%s: %s", dr.Namespace, dr.Name, tls.GetMode())
	case tls != nil:
		return tls.GetMode().String()
	case autoIstio && dr != nil:
		return fmt.Sprintf("auto mTLS (%s/%s sets no tls): ISTIO_MUTUAL to endpoints with a sidecar", dr.Namespace, dr.Name)
	case autoIstio:
		return "auto mTLS (no DestinationRule): ISTIO_MUTUAL to endpoints with a sidecar"
	case tls == nil && !b.m.AutoMTLS():
		return "none: plaintext (the mesh config sets enableAutoMtls: false)"
	default:
		return "none: plaintext"
	}
}
