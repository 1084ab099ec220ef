package translate

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

const gwID = "istio-system/istio-ingressgateway"

// Gateway server TLS modes (pilot/pkg/networking/core/gateway.go).
func TestGatewayServerTLS(t *testing.T) {
	res, _ := translate(t, "gateway.yaml", "", gwID)
	l := findListener(t, res, "0.0.0.0_8443")
	if l.GetBindToPort() != nil && !l.GetBindToPort().GetValue() {
		t.Errorf("gateway listener does not bind")
	}
	equal(t, "listener filters", names(l.ListenerFilters), []string{"envoy.filters.listener.tls_inspector"})
	tests := []struct {
		chain      string
		sni        string
		cert       string
		requireCli bool
		caSDS      string
	}{
		{"default/gw|https-simple|b.example.com", "b.example.com", "kubernetes://b-cert", false, ""},
		{"default/gw|https-mutual|m.example.com", "m.example.com", "kubernetes://m-cert", true, "kubernetes://m-cert-cacert"},
		{"default/gw|https-optional|o.example.com", "o.example.com", "kubernetes://o-cert", false, "kubernetes://o-cert-cacert"},
	}
	for _, tt := range tests {
		t.Run(tt.chain, func(t *testing.T) {
			fc := findChain(t, l, tt.chain)
			equal(t, "server_names", fc.FilterChainMatch.ServerNames, []string{tt.sni})
			d := downstreamTLS(t, fc)
			equal(t, "cert SDS", names(d.CommonTlsContext.TlsCertificateSdsSecretConfigs), []string{tt.cert})
			if d.GetRequireClientCertificate().GetValue() != tt.requireCli {
				t.Errorf("require_client_certificate = %v", d.GetRequireClientCertificate().GetValue())
			}
			if got := d.CommonTlsContext.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); got != tt.caSDS {
				t.Errorf("CA SDS = %q, want %q", got, tt.caSDS)
			}
			h := chainHCM(t, fc)
			if !strings.HasPrefix(h.GetRds().GetRouteConfigName(), "https.8443.") {
				t.Errorf("RDS = %q", h.GetRds().GetRouteConfigName())
			}
		})
	}
	// ISTIO_MUTUAL: workload cert, mesh root, client cert required.
	d := downstreamTLS(t, findChain(t, findListener(t, res, "0.0.0.0_9445"), "default/gw|https-istio|i.example.com"))
	equal(t, "istio cert SDS", names(d.CommonTlsContext.TlsCertificateSdsSecretConfigs), []string{SecretDefault})
	if !d.GetRequireClientCertificate().GetValue() {
		t.Errorf("ISTIO_MUTUAL does not require client cert")
	}
}

func TestGatewayRoutes(t *testing.T) {
	res, _ := translate(t, "gateway.yaml", "", gwID)
	rc := findRoute(t, res, "http.8080")
	if len(rc.VirtualHosts) != 1 {
		t.Fatalf("vhosts = %v", names(rc.VirtualHosts))
	}
	vh := rc.VirtualHosts[0]
	equal(t, "domains", vh.Domains, []string{"b.example.com", "b.example.com:8080"})
	if vh.RequireTls != route.VirtualHost_ALL {
		t.Errorf("httpsRedirect not applied")
	}
	if got := vh.Routes[0].GetRoute().GetCluster(); got != "outbound|8080||b.default.svc.cluster.local" {
		t.Errorf("cluster = %q", got)
	}
	// A "*" server takes every host of the bound VirtualServices.
	equal(t, "http.8081 vhosts", names(findRoute(t, res, "http.8081").VirtualHosts), []string{"b.example.com:8081", "m.example.com:8081", "o.example.com:8081", "i.example.com:8081"})
	// PASSTHROUGH: tls routes by SNI, bytes forwarded.
	fc := findChain(t, findListener(t, res, "0.0.0.0_9443"), "default/gw|tls-pass|VirtualService default/b|b.example.com")
	if fc.TransportSocket != nil {
		t.Errorf("passthrough terminates TLS")
	}
	equal(t, "passthrough SNI", fc.FilterChainMatch.ServerNames, []string{"b.example.com"})
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|8443||b.default.svc.cluster.local" {
		t.Errorf("passthrough cluster = %q", got)
	}
	// TLS terminated: tcp routes.
	fc = findChain(t, findListener(t, res, "0.0.0.0_9444"), "default/gw|tls-term|t.example.com")
	if fc.TransportSocket == nil || chainTCPProxy(t, fc).GetCluster() != "outbound|9000||b.default.svc.cluster.local" {
		t.Errorf("terminated TLS chain = %v", fc)
	}
	// TCP server.
	fc = findChain(t, findListener(t, res, "0.0.0.0_9000"), "default/gw|tcp")
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|9000||b.default.svc.cluster.local" {
		t.Errorf("tcp cluster = %q", got)
	}
	// AUTO_PASSTHROUGH: sni_cluster and SNI-named clusters without TLS.
	fc = findChain(t, findListener(t, res, "0.0.0.0_15443"), "default/gw|tls-auto|auto-passthrough")
	if fc.Filters[0].Name != "envoy.filters.network.sni_cluster" {
		t.Errorf("auto passthrough filters = %v", names(fc.Filters))
	}
	c := findCluster(t, res, "outbound_.8080_._.b.default.svc.cluster.local")
	if c.TransportSocket != nil || c.TransportSocketMatches != nil {
		t.Errorf("SNI-DNAT cluster originates TLS")
	}
}

// Credentials missing from the bundle are issued: ingress-CA server certs for
// the server hosts, client CA as ca.crt (docs/bundles.md).
func TestGatewaySecretsIssued(t *testing.T) {
	res, _ := translate(t, "gateway.yaml", "", gwID)
	got := map[string]bool{}
	for _, s := range res.Secrets {
		got[s.Name] = true
		if s.Name == "kubernetes://m-cert" {
			blk, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "m-cert DNS names", cert.DNSNames, []string{"m.example.com"})
			if !strings.Contains(cert.Issuer.CommonName, "ingress") {
				t.Errorf("issuer = %s", cert.Issuer.CommonName)
			}
		}
		if s.Name == "kubernetes://m-cert-cacert" {
			blk, _ := pem.Decode(s.GetValidationContext().GetTrustedCa().GetInlineBytes())
			cert, _ := x509.ParseCertificate(blk.Bytes)
			if !strings.Contains(cert.Subject.CommonName, "client") {
				t.Errorf("MUTUAL ca.crt is %s, want the client CA", cert.Subject.CommonName)
			}
		}
	}
	for _, n := range []string{"kubernetes://b-cert", "kubernetes://m-cert", "kubernetes://m-cert-cacert", "kubernetes://o-cert-cacert", "kubernetes://t-cert", "default", "ROOTCA"} {
		if !got[n] {
			t.Errorf("missing secret %s (have %v)", n, names(res.Secrets))
		}
	}
	if got["kubernetes://b-cert-cacert"] {
		t.Errorf("SIMPLE server got a CA secret")
	}
}

// A bundle Secret is used as is.
func TestGatewayBundleSecret(t *testing.T) {
	kp, err := testStore(t).Server("bundle", []string{"b.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	indent := func(b []byte) string {
		return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
	}
	res, _ := translate(t, "gateway.yaml", `apiVersion: v1
kind: Secret
metadata: {name: b-cert, namespace: istio-system}
type: kubernetes.io/tls
stringData:
  tls.crt: |
`+indent(kp.CertPEM)+`
  tls.key: |
`+indent(kp.KeyPEM)+`
`, gwID)
	for _, s := range res.Secrets {
		if s.Name == "kubernetes://b-cert" {
			if got := string(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()); strings.TrimSpace(got) != strings.TrimSpace(string(kp.CertPEM)) {
				t.Errorf("bundle secret not used")
			}
			return
		}
	}
	t.Errorf("no kubernetes://b-cert")
}

// A VirtualService with only a tls block does not apply to an HTTPS server
// that terminates: the gateway answers 404 (docs/istio-behaviour.md).
// The issued certificate for a "*" server covers the bound hosts.
func TestGatewayWrongVSBlock(t *testing.T) {
	m := loadFile(t, "../scenarios/testdata/14-gateway-terminate-with-tls-routes.yaml")
	w, _ := m.Workload(gwID)
	res, err := Translate(m, w, testEnv(t, m))
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range res.Routes {
		if len(rc.VirtualHosts) != 0 {
			t.Errorf("route %s has virtual hosts %v; tls routes must not apply", rc.Name, names(rc.VirtualHosts))
		}
	}
	for _, s := range res.Secrets {
		if s.Name == "kubernetes://sds-credential" {
			blk, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			cert, _ := x509.ParseCertificate(blk.Bytes)
			equal(t, "DNS names", cert.DNSNames, []string{"*.example.com"})
		}
	}
}

func TestGatewayUnsupported(t *testing.T) {
	err := translateErr(t, "gateway.yaml", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bound, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 7000, name: http, protocol: HTTP}
    hosts: ["*"]
    bind: 127.0.0.1
`, gwID)
	if err == nil || !strings.Contains(err.Error(), "Gateway default/bound: spec.servers[0].bind is not supported") {
		t.Errorf("err = %v", err)
	}
}

// Gateway upstream clusters with SIMPLE/MUTUAL and no sni get auto SNI and
// auto SAN validation like a sidecar's, whatever the port's protocol
// (pilot/pkg/networking/core/cluster_tls.go, setAutoSniAndAutoSanValidation;
// cluster_builder.go build fills in HTTP/1.1). The tcp_proxy of a TLS
// route ignores them: no SNI on TCP/TLS clusters without sni.
func TestGatewayUpstreamAutoSNI(t *testing.T) {
	dr := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy:
    portLevelSettings:
    - {port: {number: 8443}, tls: {mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}}
    - {port: {number: 9000}, tls: {mode: MUTUAL, credentialName: b-client, subjectAltNames: [b.example.com]}}
    - {port: {number: 8080}, tls: {mode: SIMPLE, sni: b.example.com}}
`
	tests := []struct {
		cluster          string
		autoSNI, autoSAN bool
		sni              string
	}{
		{"outbound|8443||b.default.svc.cluster.local", true, true, ""},  // https port, no sni
		{"outbound|9000||b.default.svc.cluster.local", true, false, ""}, // tcp port, SANs given
		{"outbound|8080||b.default.svc.cluster.local", false, false, "b.example.com"},
	}
	res, _ := translate(t, "gateway.yaml", dr, gwID)
	for _, tt := range tests {
		t.Run(tt.cluster, func(t *testing.T) {
			c := findCluster(t, res, tt.cluster)
			if got := upstreamTLS(t, c.TransportSocket).GetSni(); got != tt.sni {
				t.Errorf("SNI = %q, want %q", got, tt.sni)
			}
			o := httpOptions(t, c)
			u := o.GetUpstreamHttpProtocolOptions()
			if u.GetAutoSni() != tt.autoSNI || u.GetAutoSanValidation() != tt.autoSAN {
				t.Errorf("auto_sni = %v auto_san_validation = %v, want %v %v", u.GetAutoSni(), u.GetAutoSanValidation(), tt.autoSNI, tt.autoSAN)
			}
			if tt.autoSNI && o.GetUpstreamProtocolOptions() == nil {
				t.Errorf("http protocol options without upstream_protocol_options (Envoy requires it)")
			}
		})
	}
}

// Gateways have no tlsMode=istio label (gateway-injection-template.yaml,
// manifests/charts/gateway): a sidecar's auto mTLS sends them plaintext.
func TestSidecarToGatewayIsPlaintextUnderAutoMTLS(t *testing.T) {
	svc := `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http, port: 8080}]
`
	res, m := translate(t, "gateway.yaml", svc, "default/b")
	c := findCluster(t, res, "outbound|8080||istio-ingressgateway.istio-system.svc.cluster.local")
	found, labelled := endpointHasTLSMode(c, testEnv(t, m).Addrs[gwID].String())
	if !found || labelled {
		t.Errorf("gateway endpoint: found=%v tlsMode=%v, want found and unlabelled", found, labelled)
	}
}

// httpsRedirect belongs to its server: a second server on the port without
// it is not redirected, and a redirect-only server with no VirtualService
// still gets a virtual host that redirects
// (pilot/pkg/networking/core/gateway.go, buildGatewayHTTPRouteConfig).
func TestGatewayHTTPSRedirectPerServer(t *testing.T) {
	res, _ := translate(t, "gateway.yaml", `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: redirect, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http-redirect, protocol: HTTP}
    hosts: [R.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 80, name: http-served, protocol: HTTP}
    hosts: [s.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: s, namespace: default}
spec:
  hosts: [s.example.com]
  gateways: [redirect]
  http:
  - route: [{destination: {host: b, port: {number: 8080}}}]
`, gwID)
	rc := findRoute(t, res, "http.80")
	got := map[string]route.VirtualHost_TlsRequirementType{}
	routes := map[string]int{}
	for _, vh := range rc.VirtualHosts {
		got[vh.Name] = vh.RequireTls
		routes[vh.Name] = len(vh.Routes)
	}
	want := map[string]route.VirtualHost_TlsRequirementType{
		"r.example.com:80": route.VirtualHost_ALL,  // redirect-only, host lower-cased
		"s.example.com:80": route.VirtualHost_NONE, // the other server keeps plain HTTP
	}
	if len(got) != len(want) {
		t.Fatalf("virtual hosts = %v, want %v", got, want)
	}
	for n, w := range want {
		if g, ok := got[n]; !ok || g != w {
			t.Errorf("%s: require_tls = %v (present %v), want %v", n, g, ok, w)
		}
	}
	if routes["r.example.com:80"] != 0 || routes["s.example.com:80"] != 1 {
		t.Errorf("routes per vhost = %v", routes)
	}
}

// The gateway Service's ports move the listeners to their targetPorts;
// routing keeps the server's own port: route and virtual host names of
// HTTPS, VirtualService port matches, destinations without a port
// (pilot/pkg/model/gateway.go resolvePorts, gatewayRDSRouteName;
// pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig, isPortMatch).
func TestGatewayListensOnServiceTargetPort(t *testing.T) {
	const svc = `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http, port: 8080, targetPort: 18080}
  - {name: https, port: 8443, targetPort: 18443}
  - {name: tls, port: 9443, targetPort: 19443}
  - {name: tcp, port: 9000, targetPort: 19000}
`
	res, _ := translate(t, "gateway.yaml", svc, gwID)
	for _, moved := range []string{"8080", "8443", "9443", "9000"} {
		for _, l := range res.Listeners {
			if l.Name == "0.0.0.0_"+moved {
				t.Errorf("listener %s still on the Service port", l.Name)
			}
		}
	}
	// Plain HTTP: the route config is named for the listener's port, its
	// virtual hosts for the server's.
	fc := findChain(t, findListener(t, res, "0.0.0.0_18080"), "0.0.0.0_18080|http")
	equal(t, "http RDS", []string{chainHCM(t, fc).GetRds().GetRouteConfigName()}, []string{"http.18080"})
	equal(t, "http vhosts", names(findRoute(t, res, "http.18080").VirtualHosts), []string{"b.example.com:8080"})
	// HTTPS: route config named for the server's port.
	fc = findChain(t, findListener(t, res, "0.0.0.0_18443"), "default/gw|https-simple|b.example.com")
	if got := chainHCM(t, fc).GetRds().GetRouteConfigName(); got != "https.8443.https-simple.gw.default" {
		t.Errorf("https RDS = %q", got)
	}
	// tls and tcp routes match the server's port (9443, 9000).
	fc = findChain(t, findListener(t, res, "0.0.0.0_19443"), "default/gw|tls-pass|VirtualService default/b|b.example.com")
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|8443||b.default.svc.cluster.local" {
		t.Errorf("passthrough cluster = %q", got)
	}
	fc = findChain(t, findListener(t, res, "0.0.0.0_19000"), "default/gw|tcp")
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|9000||b.default.svc.cluster.local" {
		t.Errorf("tcp cluster = %q", got)
	}
	// Ports the Service does not have stay where the server says.
	findListener(t, res, "0.0.0.0_8081")
	if got := res.Decisions["gateway:19000"].Gateway; !strings.Contains(got, "on targetPort 19000 of Service istio-system/istio-ingressgateway port 9000") {
		t.Errorf("decision = %q", got)
	}
}
