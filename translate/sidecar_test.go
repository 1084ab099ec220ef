package translate

import (
	"fmt"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	stream "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
)

// Inbound filter chains per mode and port protocol
// (pilot/pkg/networking/core/filterchain_options.go).
func TestInboundChainsPerMode(t *testing.T) {
	type chain struct {
		name      string
		transport string
		alpn      string // comma-joined
		mtls      bool
		http      bool
	}
	istioALPN := strings.Join(allIstioMtlsALPNs, ",")
	tests := []struct {
		mode string
		port uint32
		want []chain
	}{
		{"STRICT", 8080, []chain{{"mtls", "tls", "", true, true}}},
		{"PERMISSIVE", 8080, []chain{{"mtls", "tls", istioALPN, true, true}, {"plaintext", "raw_buffer", "", false, true}}},
		{"DISABLE", 8080, []chain{{"plaintext", "", "", false, true}}},
		{"STRICT", 9000, []chain{{"mtls", "tls", "", true, false}}},
		{"PERMISSIVE", 9000, []chain{{"mtls", "tls", istioALPN, true, false}, {"plaintext", "raw_buffer", "", false, false}, {"tls-passthrough", "tls", "", false, false}}},
		{"DISABLE", 9000, []chain{{"plaintext", "", "", false, false}}},
		// https is TCP class: the app's TLS passes through in PERMISSIVE.
		{"PERMISSIVE", 8443, []chain{{"mtls", "tls", istioALPN, true, false}, {"plaintext", "raw_buffer", "", false, false}, {"tls-passthrough", "tls", "", false, false}}},
		{"STRICT", 7070, []chain{{"mtls-http", "tls", "istio-http/1.0,istio-http/1.1,istio-h2", true, true}, {"mtls-tcp", "tls", "", true, false}}},
		{"PERMISSIVE", 7070, []chain{
			{"mtls-http", "tls", "istio-http/1.0,istio-http/1.1,istio-h2", true, true},
			{"mtls-tcp", "tls", "istio,istio-peer-exchange", true, false},
			{"plaintext-http", "raw_buffer", "http/1.0,http/1.1,h2c", false, true},
			{"plaintext-tcp", "raw_buffer", "", false, false},
			{"tls-passthrough", "tls", "", false, false},
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.mode, tt.port), func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", meshPA(tt.mode), "b")
			l := findListener(t, res, VirtualInboundListener)
			prefix := fmt.Sprintf("inbound|%d|", tt.port)
			var got []chain
			for _, n := range chainNamesWithPrefix(l, prefix) {
				fc := findChain(t, l, n)
				m := fc.FilterChainMatch
				if m.GetDestinationPort().GetValue() != tt.port {
					t.Errorf("%s: destination_port = %d", n, m.GetDestinationPort().GetValue())
				}
				c := chain{
					name:      strings.TrimPrefix(n, prefix),
					transport: m.TransportProtocol,
					alpn:      strings.Join(m.ApplicationProtocols, ","),
					mtls:      fc.TransportSocket != nil,
					http:      chainHCM(t, fc) != nil,
				}
				got = append(got, c)
				if c.mtls {
					d := downstreamTLS(t, fc)
					if !d.GetRequireClientCertificate().GetValue() {
						t.Errorf("%s: require_client_certificate not set", n)
					}
					ctx := d.CommonTlsContext
					if got := names(ctx.TlsCertificateSdsSecretConfigs); len(got) != 1 || got[0] != SecretDefault {
						t.Errorf("%s: server cert SDS = %v, want [default]", n, got)
					}
					if v := ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); v != SecretRootCA {
						t.Errorf("%s: validation SDS = %q, want ROOTCA", n, v)
					}
				}
				if !c.http {
					if tp := chainTCPProxy(t, fc); tp.GetCluster() != InboundClusterName(tt.port) {
						t.Errorf("%s: tcp_proxy cluster = %q", n, tp.GetCluster())
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("chains:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Port-level PeerAuthentication beats the workload's mode.
func TestInboundPortLevelMTLS(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", meshPA("STRICT")+`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: default}
spec:
  selector: {matchLabels: {app: b}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9000: {mode: DISABLE}
`, "b")
	l := findListener(t, res, VirtualInboundListener)
	equal(t, "9000 chains", chainNamesWithPrefix(l, "inbound|9000|"), []string{"inbound|9000|plaintext"})
	equal(t, "8080 chains", chainNamesWithPrefix(l, "inbound|8080|"), []string{"inbound|8080|mtls"})
	// Other ports follow the workload mode without port overrides.
	equal(t, "passthrough chains", chainNamesWithPrefix(l, "inbound|passthrough|"), []string{"inbound|passthrough|mtls-http", "inbound|passthrough|mtls-tcp"})
}

// Undeclared ports get an auto-detected port's chains (HTTP for Istio
// mTLS with istio-http/* ALPN and for detected plaintext HTTP), and
// http_inspector runs on every port but the declared ones that need none
// (pilot/pkg/networking/core/listener_inbound.go, buildInboundPassthroughChains,
// populateListenerFilters).
func TestInboundCatchAllHTTP(t *testing.T) {
	tests := []struct {
		mode   string
		chains []string
		// inspector: "" none, or "all but" the declared ports that need none
		inspector string
	}{
		{"PERMISSIVE", []string{"mtls-http", "mtls-tcp", "plaintext-http", "plaintext-tcp", "tls-passthrough"}, "all but 8080,8443,9000"},
		{"STRICT", []string{"mtls-http", "mtls-tcp"}, ""},
		{"DISABLE", []string{"plaintext-http", "plaintext-tcp", "tls-passthrough"}, "all but 8080,8443,9000"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", meshPA(tt.mode), "b")
			l := findListener(t, res, VirtualInboundListener)
			var want []string
			for _, c := range tt.chains {
				want = append(want, "inbound|passthrough|"+c)
			}
			equal(t, "passthrough chains", chainNamesWithPrefix(l, "inbound|passthrough|"), want)
			for _, c := range want {
				fc := findChain(t, l, c)
				isHTTP := len(fc.Filters) == 1 && fc.Filters[0].Name == "envoy.filters.network.http_connection_manager"
				if isHTTP != strings.Contains(c, "-http") {
					t.Errorf("%s: HTTP connection manager = %v", c, isHTTP)
				}
			}
			got := ""
			for _, f := range l.ListenerFilters {
				if f.Name != "envoy.filters.listener.http_inspector" {
					continue
				}
				var ports []string
				d := f.GetFilterDisabled()
				for _, r := range d.GetOrMatch().GetRules() {
					ports = append(ports, fmt.Sprint(r.GetDestinationPortRange().GetStart()))
				}
				got = "all but " + strings.Join(ports, ",")
			}
			if got != tt.inspector {
				t.Errorf("http_inspector = %q, want %q", got, tt.inspector)
			}
		})
	}
}

// The app sees X-Forwarded-Client-Cert with the peer's URI
// (pilot/pkg/networking/core/listener.go).
func TestInboundXFCC(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", "", "b")
	l := findListener(t, res, VirtualInboundListener)
	h := chainHCM(t, findChain(t, l, "inbound|8080|mtls"))
	if h.ForwardClientCertDetails != hcm.HttpConnectionManager_APPEND_FORWARD {
		t.Errorf("forward_client_cert_details = %v", h.ForwardClientCertDetails)
	}
	if d := h.SetCurrentClientCertDetails; d == nil || !d.Uri {
		t.Errorf("set_current_client_cert_details = %v, want uri", d)
	}
	rc := h.GetRouteConfig()
	if got := rc.VirtualHosts[0].Routes[0].GetRoute().GetCluster(); got != "inbound|8080||" {
		t.Errorf("inbound route cluster = %q", got)
	}
	// Local inbound is never TLS.
	c := findCluster(t, res, "inbound|8080||")
	if c.TransportSocket != nil || c.TransportSocketMatches != nil {
		t.Errorf("inbound cluster has TLS")
	}
	if a := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress(); a.Address != "127.0.0.1" || a.GetPortValue() != 8080 {
		t.Errorf("inbound cluster endpoint = %v", a)
	}
}

func TestInboundListenerShape(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", "", "b")
	l := findListener(t, res, VirtualInboundListener)
	if l.GetAddress().GetSocketAddress().GetPortValue() != InboundCapturePort {
		t.Errorf("port = %v", l.Address)
	}
	equal(t, "listener filters", names(l.ListenerFilters), []string{"envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"})
	if l.ListenerFilters[2].FilterDisabled == nil {
		t.Errorf("http_inspector runs on every port; want only auto ports")
	}
	if len(l.AccessLog) == 0 {
		t.Errorf("no listener access log (filter_chain_not_found would go unlogged)")
	}
	findCluster(t, res, InboundPassthroughCluster)
}

// Auto mTLS (pilot/pkg/networking/core/cluster_builder.go, mtls_checker.go).
func TestOutboundAutoMTLS(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		cluster    string
		wantMatch  bool     // transport_socket_matches present
		labelled   []string // endpoint workloads with tlsMode=istio
		unlabelled []string
	}{
		{"sidecar endpoints", "", "outbound|8080||b.default.svc.cluster.local", true, []string{"default/b"}, nil},
		{"no sidecar", "", "outbound|8080||legacy.legacy.svc.cluster.local", true, nil, []string{"legacy/legacy"}},
		{"service namespace DISABLE", `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: DISABLE}}
`, "outbound|8080||b.default.svc.cluster.local", false, nil, nil},
		{"endpoint port DISABLE", `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: default}
spec:
  selector: {matchLabels: {version: v1}}
  portLevelMtls: {8080: {mode: DISABLE}}
`, "outbound|80||web.default.svc.cluster.local", true, []string{"default/b2"}, []string{"default/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, m := translate(t, "sidecar.yaml", tt.extra, "a")
			env := testEnv(t, m)
			c := findCluster(t, res, tt.cluster)
			if c.TransportSocket != nil {
				t.Errorf("transport_socket set; auto mTLS uses matches")
			}
			if got := len(c.TransportSocketMatches) > 0; got != tt.wantMatch {
				t.Fatalf("transport_socket_matches present = %v, want %v", got, tt.wantMatch)
			}
			if tt.wantMatch {
				tm := c.TransportSocketMatches[0]
				if tm.Match.Fields[TLSModeMetadataKey].GetStringValue() != TLSModeIstio {
					t.Errorf("first match = %v", tm.Match)
				}
				u := upstreamTLS(t, tm.TransportSocket)
				if u == nil {
					t.Fatal("tlsMode-istio socket is not TLS")
				}
				if !strings.HasPrefix(u.Sni, "outbound_.") {
					t.Errorf("SNI = %q", u.Sni)
				}
				if upstreamTLS(t, c.TransportSocketMatches[1].TransportSocket) != nil || len(c.TransportSocketMatches[1].Match.GetFields()) != 0 {
					t.Errorf("default match is not plaintext catch-all")
				}
			}
			for _, id := range tt.labelled {
				if found, l := endpointHasTLSMode(c, env.Addrs[id].String()); !found || !l {
					t.Errorf("endpoint %s: found=%v tlsMode=%v, want labelled", id, found, l)
				}
			}
			for _, id := range tt.unlabelled {
				if found, l := endpointHasTLSMode(c, env.Addrs[id].String()); !found || l {
					t.Errorf("endpoint %s: found=%v tlsMode=%v, want unlabelled", id, found, l)
				}
			}
		})
	}
}

// DestinationRule tls (pilot/pkg/networking/core/cluster_tls.go).
func TestOutboundDestinationRuleTLS(t *testing.T) {
	dr := func(tls string) string {
		return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy:
    tls: ` + tls + `
  subsets:
  - {name: v1, labels: {version: v1}}
`
	}
	tests := []struct {
		name    string
		tls     string
		cluster string
		check   func(t *testing.T, u *tlsv3.UpstreamTlsContext, auto bool)
	}{
		{"DISABLE", `{mode: DISABLE}`, "outbound|8080||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			if u != nil {
				t.Errorf("TLS with DISABLE")
			}
		}},
		{"ISTIO_MUTUAL http", `{mode: ISTIO_MUTUAL}`, "outbound|8080||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			equal(t, "SNI", []string{u.Sni}, []string{"outbound_.8080_._.b.default.svc.cluster.local"})
			equal(t, "SANs", sanStrings(u.CommonTlsContext.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()), []string{"URI:spiffe://cluster.local/ns/default/sa/bee"})
			equal(t, "ALPN", u.CommonTlsContext.AlpnProtocols, alpnIstioTCP)
			equal(t, "cert SDS", names(u.CommonTlsContext.TlsCertificateSdsSecretConfigs), []string{"default"})
			if v := u.CommonTlsContext.TlsParams; v.TlsMinimumProtocolVersion != tlsv3.TlsParameters_TLSv1_2 || v.TlsMaximumProtocolVersion != tlsv3.TlsParameters_TLSv1_3 {
				t.Errorf("TLS params = %v", v)
			}
		}},
		{"ISTIO_MUTUAL subset tcp", `{mode: ISTIO_MUTUAL}`, "outbound|9000|v1|b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			equal(t, "SNI", []string{u.Sni}, []string{"outbound_.9000_.v1_.b.default.svc.cluster.local"})
			equal(t, "ALPN", u.CommonTlsContext.AlpnProtocols, []string{"istio-peer-exchange", "istio"})
		}},
		{"ISTIO_MUTUAL sni and SANs", `{mode: ISTIO_MUTUAL, sni: x.example, subjectAltNames: ["spiffe://cluster.local/ns/x/sa/y"]}`, "outbound|8080||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			equal(t, "SNI", []string{u.Sni}, []string{"x.example"})
			equal(t, "SANs", sanStrings(u.CommonTlsContext.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()), []string{"URI:spiffe://cluster.local/ns/x/sa/y"})
		}},
		{"SIMPLE with CA file, auto SNI", `{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}`, "outbound|8080||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, auto bool) {
			equal(t, "trusted_ca", []string{u.CommonTlsContext.GetValidationContext().GetTrustedCa().GetFilename()}, []string{"/etc/meshtls/ca/app.pem"})
			if u.Sni != "" || !auto {
				t.Errorf("SNI = %q auto_sni = %v; want auto SNI", u.Sni, auto)
			}
			if len(u.CommonTlsContext.TlsCertificates)+len(u.CommonTlsContext.TlsCertificateSdsSecretConfigs) != 0 {
				t.Errorf("SIMPLE presents a client cert")
			}
		}},
		{"SIMPLE system roots", `{mode: SIMPLE, sni: b.example.com}`, "outbound|8443||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, auto bool) {
			equal(t, "trusted_ca", []string{u.CommonTlsContext.GetValidationContext().GetTrustedCa().GetFilename()}, []string{systemRoots})
			equal(t, "SNI", []string{u.Sni}, []string{"b.example.com"})
		}},
		{"SIMPLE insecure", `{mode: SIMPLE, insecureSkipVerify: true}`, "outbound|8443||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			if u.CommonTlsContext.ValidationContextType != nil {
				t.Errorf("validation with insecureSkipVerify")
			}
		}},
		{"MUTUAL files", `{mode: MUTUAL, caCertificates: /etc/meshtls/ca/app.pem, clientCertificate: /c.pem, privateKey: /k.pem}`, "outbound|8443||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			c := u.CommonTlsContext.TlsCertificates
			if len(c) != 1 || c[0].CertificateChain.GetFilename() != "/c.pem" || c[0].PrivateKey.GetFilename() != "/k.pem" {
				t.Errorf("client cert = %v", c)
			}
		}},
		// credentialName on a sidecar counts only in a DestinationRule with
		// a workloadSelector; without one Istio builds no TLS context and
		// the cluster is plaintext (cluster_tls.go, buildUpstreamClusterTLSContext).
		{"MUTUAL credentialName without workloadSelector", `{mode: MUTUAL, credentialName: b-client}`, "outbound|8443||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			if u != nil {
				t.Errorf("TLS from a credentialName in a DestinationRule without workloadSelector")
			}
		}},
		{"MUTUAL credentialName with workloadSelector", "{mode: MUTUAL, credentialName: b-client}\n  workloadSelector: {matchLabels: {app: a}}", "outbound|8443||b.default.svc.cluster.local", func(t *testing.T, u *tlsv3.UpstreamTlsContext, _ bool) {
			equal(t, "cert SDS", names(u.CommonTlsContext.TlsCertificateSdsSecretConfigs), []string{"kubernetes://b-client"})
			equal(t, "CA SDS", []string{u.CommonTlsContext.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName()}, []string{"kubernetes://b-client-cacert"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", dr(tt.tls), "a")
			c := findCluster(t, res, tt.cluster)
			if len(c.TransportSocketMatches) != 0 {
				t.Errorf("transport_socket_matches with DR tls set")
			}
			auto := httpOptions(t, c).GetUpstreamHttpProtocolOptions().GetAutoSni()
			tt.check(t, upstreamTLS(t, c.TransportSocket), auto)
		})
	}
}

func TestSecretsReferenced(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  workloadSelector: {matchLabels: {app: a}}
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: b-client}}
`, "a")
	equal(t, "secrets", names(res.Secrets), []string{"ROOTCA", "default", "kubernetes://b-client", "kubernetes://b-client-cacert"})
	for _, s := range res.Secrets {
		if s.Name == "default" && len(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes()) == 0 {
			t.Errorf("default has no key")
		}
	}
}

func TestOutboundListeners(t *testing.T) {
	res, m := translate(t, "sidecar.yaml", "", "a")
	env := testEnv(t, m)
	vo := findListener(t, res, VirtualOutboundListener)
	if !vo.GetUseOriginalDst().GetValue() || vo.GetAddress().GetSocketAddress().GetPortValue() != OutboundCapturePort {
		t.Errorf("virtualOutbound = %v", vo)
	}
	l := findListener(t, res, "0.0.0.0_8080")
	if l.GetBindToPort().GetValue() {
		t.Errorf("0.0.0.0_8080 binds")
	}
	if h := chainHCM(t, findChain(t, l, "0.0.0.0_8080|http")); h.GetRds().GetRouteConfigName() != "8080" {
		t.Errorf("RDS name = %q", h.GetRds().GetRouteConfigName())
	}
	rc := findRoute(t, res, "8080")
	var vh []string
	for _, v := range rc.VirtualHosts {
		vh = append(vh, v.Name)
		if v.Name == "b.default.svc.cluster.local:8080" {
			vip := env.Addrs["Service/default/b"].String()
			equal(t, "b domains", v.Domains, []string{"b.default.svc.cluster.local", "b.default.svc.cluster.local:8080", "b", "b:8080", "b.default", "b.default:8080", "b.default.svc", "b.default.svc:8080", vip, vip + ":8080"})
			if got := v.Routes[0].GetRoute().GetCluster(); got != "outbound|8080||b.default.svc.cluster.local" {
				t.Errorf("b route cluster = %q", got)
			}
		}
		if v.Name == "legacy.legacy.svc.cluster.local:8080" && v.Domains[2] != "legacy.legacy" {
			t.Errorf("legacy domains = %v (short name only from the same namespace)", v.Domains)
		}
	}
	equal(t, "vhosts", vh, []string{"a.default.svc.cluster.local:8080", "b.default.svc.cluster.local:8080", "b2.default.svc.cluster.local:8080", "legacy.legacy.svc.cluster.local:8080", "allow_any"})

	// TCP services are told apart by cluster IP (listener.go binds them to
	// the service address).
	l9 := findListener(t, res, "0.0.0.0_9000")
	fc := findChain(t, l9, "outbound|9000||legacy.legacy.svc.cluster.local")
	if p := fc.FilterChainMatch.PrefixRanges; len(p) != 1 || p[0].AddressPrefix != env.Addrs["Service/legacy/legacy"].String() || p[0].PrefixLen.GetValue() != 32 {
		t.Errorf("prefix ranges = %v", p)
	}
	if tp := chainTCPProxy(t, fc); tp.GetCluster() != "outbound|9000||legacy.legacy.svc.cluster.local" {
		t.Errorf("tcp_proxy cluster = %q", tp.GetCluster())
	}
	findChain(t, l9, "0.0.0.0_9000|passthrough")
	// Auto-detected port: HTTP and TCP chains per service plus http_inspector.
	l7 := findListener(t, res, "0.0.0.0_7070")
	findChain(t, l7, "outbound|7070||b.default.svc.cluster.local|http")
	findChain(t, l7, "outbound|7070||b.default.svc.cluster.local|tcp")
	equal(t, "7070 listener filters", names(l7.ListenerFilters), []string{"envoy.filters.listener.http_inspector"})
	for _, n := range []string{PassthroughCluster, BlackHoleCluster, "outbound|80||web.default.svc.cluster.local", "outbound|9001||web.default.svc.cluster.local"} {
		findCluster(t, res, n)
	}
	// Endpoint ports are target ports.
	c := findCluster(t, res, "outbound|9001||web.default.svc.cluster.local")
	if p := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); p != 9000 {
		t.Errorf("web:9001 endpoint port = %d, want target port 9000", p)
	}
}

func TestVirtualServiceRoutes(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http:
  - match: [{uri: {prefix: /v2}, headers: {x-test: {exact: "1"}}}]
    route: [{destination: {host: web, subset: v2}}]
  - route:
    - {destination: {host: web, subset: v1}, weight: 90}
    - {destination: {host: web, subset: v2}, weight: 10}
  tcp:
  - route: [{destination: {host: web, subset: v1, port: {number: 9001}}}]
`, "a")
	rc := findRoute(t, res, "80")
	var vh *struct{}
	_ = vh
	for _, v := range rc.VirtualHosts {
		if v.Name != "web.default.svc.cluster.local:80" {
			continue
		}
		if len(v.Routes) != 2 {
			t.Fatalf("routes = %v", v.Routes)
		}
		r0 := v.Routes[0]
		if r0.Match.GetPrefix() != "/v2" || r0.Match.Headers[0].Name != "x-test" || r0.Match.Headers[0].GetStringMatch().GetExact() != "1" {
			t.Errorf("route 0 match = %v", r0.Match)
		}
		if got := r0.GetRoute().GetCluster(); got != "outbound|80|v2|web.default.svc.cluster.local" {
			t.Errorf("route 0 cluster = %q", got)
		}
		wc := v.Routes[1].GetRoute().GetWeightedClusters().GetClusters()
		if len(wc) != 2 || wc[0].Name != "outbound|80|v1|web.default.svc.cluster.local" || wc[0].Weight.GetValue() != 90 || wc[1].Weight.GetValue() != 10 {
			t.Errorf("weighted = %v", wc)
		}
	}
	findCluster(t, res, "outbound|80|v2|web.default.svc.cluster.local")
	l := findListener(t, res, "0.0.0.0_9001")
	if got := chainTCPProxy(t, findChain(t, l, "outbound|9001||web.default.svc.cluster.local")).GetCluster(); got != "outbound|9001|v1|web.default.svc.cluster.local" {
		t.Errorf("tcp route cluster = %q", got)
	}
}

func TestUnsupportedIsAnError(t *testing.T) {
	tests := []struct {
		name, extra, want string
	}{
		// Fields that change where calls go or the upstream protocol (and
		// its ALPN) and are not modelled stay errors.
		{"DR loadBalancer PASSTHROUGH", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x, namespace: default}
spec:
  host: b
  trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
`, "DestinationRule default/x: spec.trafficPolicy.loadBalancer.simple: PASSTHROUGH"},
		{"DR h2UpgradePolicy", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x, namespace: default}
spec:
  host: b
  trafficPolicy:
    portLevelSettings: [{port: {number: 8080}, connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}]
`, "DestinationRule default/x: spec.trafficPolicy.portLevelSettings[0].connectionPool.http.h2UpgradePolicy: UPGRADE"},
		{"VS delegate", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: [b]
  http: [{delegate: {name: other}}]
`, "VirtualService default/v: spec.http[0].delegate is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translateErr(t, "sidecar.yaml", tt.extra, "a")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAccessLogs(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", "", "a")
	for _, l := range res.Listeners {
		if len(l.AccessLog) == 0 {
			t.Errorf("listener %s has no access log", l.Name)
		}
		for _, fc := range l.FilterChains {
			if h := chainHCM(t, fc); h != nil && len(h.AccessLog) == 0 {
				t.Errorf("%s/%s HCM has no access log", l.Name, fc.Name)
			}
			if tp := chainTCPProxy(t, fc); tp != nil {
				if len(tp.AccessLog) == 0 {
					t.Errorf("%s/%s tcp_proxy has no access log", l.Name, fc.Name)
				}
				// A line when the upstream connects, not only at close,
				// unless the chain terminates downstream TLS (the peer may
				// not be verified yet when the upstream connects).
				if got, want := tp.GetAccessLogOptions().GetFlushAccessLogOnConnected(), fc.TransportSocket == nil; got != want {
					t.Errorf("%s/%s tcp_proxy: flush_access_log_on_connected = %v, want %v", l.Name, fc.Name, got, want)
				}
				for _, al := range tp.AccessLog {
					so := unmarshal(t, al.GetTypedConfig(), &stream.StdoutAccessLog{})
					if got := so.GetLogFormat().GetJsonFormat().GetFields()[accesslog.KeyEvent].GetStringValue(); got != "%ACCESS_LOG_TYPE%" {
						t.Errorf("%s/%s: %s = %q, want %%ACCESS_LOG_TYPE%%", l.Name, fc.Name, accesslog.KeyEvent, got)
					}
				}
			}
		}
	}
}

func TestVirtualServiceActions(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: b2, redirectCode: 302}
  - match: [{uri: {prefix: /gone}}]
    directResponse: {status: 410, body: {string: gone}}
  - match: [{uri: {prefix: /api}}]
    rewrite: {uri: /v1, authority: b2.default.svc.cluster.local}
    headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
    retries: {attempts: 0}
    timeout: 3s
    route: [{destination: {host: b2}}]
`, "a")
	var routes []*route.Route
	for _, v := range findRoute(t, res, "8080").VirtualHosts {
		if v.Name == "b.default.svc.cluster.local:8080" {
			routes = v.Routes
		}
	}
	if len(routes) != 3 {
		t.Fatalf("routes = %d", len(routes))
	}
	if r := routes[0].GetRedirect(); r.GetPathRedirect() != "/new" || r.HostRedirect != "b2" || r.ResponseCode != route.RedirectAction_FOUND {
		t.Errorf("redirect = %v", r)
	}
	if d := routes[1].GetDirectResponse(); d.Status != 410 || d.Body.GetInlineString() != "gone" {
		t.Errorf("direct response = %v", d)
	}
	ra := routes[2].GetRoute()
	if ra.PrefixRewrite != "/v1" || ra.GetHostRewriteLiteral() != "b2.default.svc.cluster.local" || ra.RetryPolicy != nil || ra.Timeout.AsDuration().Seconds() != 3 {
		t.Errorf("route action = %v", ra)
	}
	if ra.GetCluster() != "outbound|8080||b2.default.svc.cluster.local" {
		t.Errorf("cluster = %q", ra.GetCluster())
	}
	if h := routes[2].RequestHeadersToAdd; len(h) != 2 || h[0].Header.Key != "x-a" || h[0].AppendAction != core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("headers = %v", h)
	}
	equal(t, "removed", routes[2].RequestHeadersToRemove, []string{"x-c"})
}

// SIMPLE/MUTUAL origination to a ServiceEntry host verifies the entry's
// subjectAltNames when the DestinationRule gives none; auto SAN validation
// is still decided on the DestinationRule's own SANs (cluster_tls.go,
// constructUpstreamTLS and setAutoSniAndAutoSanValidation).
func TestServiceEntrySubjectAltNames(t *testing.T) {
	se := `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  subjectAltNames: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.example.com
  trafficPolicy: {tls: {mode: SIMPLE, sni: api.example.com, caCertificates: /etc/meshtls/ca/app.pem%s}}
`
	for _, tc := range []struct {
		name, extra string
		want        []string
	}{
		{"from the ServiceEntry", "", []string{"DNS:api.example.com"}},
		{"the DestinationRule's win", ", subjectAltNames: [other.example.com]", []string{"DNS:other.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", strings.Replace(se, "%s", tc.extra, 1), "a")
			c := findCluster(t, res, "outbound|443||api.example.com")
			u := upstreamTLS(t, c.TransportSocket)
			equal(t, "SANs", sanStrings(u.CommonTlsContext.GetValidationContext().GetMatchTypedSubjectAltNames()), tc.want)
		})
	}
}

// Inbound chains of their own only for the ports Services declare, with the
// Service port's protocol; the app's other ports take the passthrough
// chains, and an undeclared port a port-level setting names gets
// passthrough chains of its own under that mode
// (pilot/pkg/networking/core/listener_inbound.go, getFilterChainsByServicePort;
// pilot/pkg/networking/plugin/authn/authentication.go, ForPassthrough).
func TestInboundChainsOnlyForServicePorts(t *testing.T) {
	const bundle = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: srv}
spec:
  ports: [{name: http, port: 8080}, {name: http-admin, port: 9090}, {name: tcp-db, port: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: srv, namespace: default}
spec:
  selector: {app: srv}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-db, port: 9000}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: srv, namespace: default}
spec:
  selector: {matchLabels: {app: srv}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9090: {mode: DISABLE}
    9000: {mode: PERMISSIVE}
`
	m, err := mesh.Parse("inbound.yaml", []byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := m.Workload("srv")
	res, err := Translate(m, w, testEnv(t, m))
	if err != nil {
		t.Fatal(err)
	}
	l := findListener(t, res, VirtualInboundListener)
	equal(t, "8080 chains", chainNamesWithPrefix(l, "inbound|8080|"), []string{"inbound|8080|mtls"})
	// 9000 is declared HTTP by the Service (its port name), not TCP.
	equal(t, "9000 chains", chainNamesWithPrefix(l, "inbound|9000|"), []string{"inbound|9000|mtls", "inbound|9000|plaintext"})
	if fc := findChain(t, l, "inbound|9000|plaintext"); fc.Filters[0].Name != "envoy.filters.network.http_connection_manager" {
		t.Errorf("9000: %s, want the HTTP connection manager (the Service port is http-db)", fc.Filters[0].Name)
	}
	// 9090 is not declared: DISABLE's passthrough chains, to InboundPassthroughCluster.
	equal(t, "9090 chains", chainNamesWithPrefix(l, "inbound|9090|"), []string{"inbound|9090|plaintext-http", "inbound|9090|plaintext-tcp", "inbound|9090|tls-passthrough"})
	if got := findChain(t, l, "inbound|9090|plaintext-tcp").GetFilterChainMatch().GetDestinationPort().GetValue(); got != 9090 {
		t.Errorf("9090 passthrough chain matches port %d", got)
	}
	equal(t, "passthrough chains", chainNamesWithPrefix(l, "inbound|passthrough|"), []string{"inbound|passthrough|mtls-http", "inbound|passthrough|mtls-tcp"})
	var inbound []string
	for _, c := range res.Clusters {
		if strings.HasPrefix(c.Name, "inbound|") {
			inbound = append(inbound, c.Name)
		}
	}
	equal(t, "inbound clusters", inbound, []string{"inbound|8080||", "inbound|9000||"})
}
