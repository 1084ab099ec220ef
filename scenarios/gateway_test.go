package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Gateways: each server mode, which VirtualService block applies, SNI
// matching, PASSTHROUGH with TLS origination on top, and an egress gateway
// originating TLS.
// Sources: https://istio.io/latest/docs/reference/config/networking/gateway/,
// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#gateways,
// pilot/pkg/networking/core/gateway.go, pkg/config/gateway/gateway.go.

const gatewayWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {istio: ingressgateway}}
spec:
  gateway: true
---
# The ingress gateway's Service as Istio's chart makes it for HTTP: port 80
# goes to 8080, where the gateway listens for a server on 80
# (pilot/pkg/model/gateway.go, resolvePorts). 443 is not a port of it, so a
# server on 443 listens on 443 itself.
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: istio-egressgateway, namespace: istio-system, labels: {istio: egressgateway}}
spec:
  gateway: true
---
# A client outside the mesh (a laptop running curl).
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: curl, namespace: outside}
spec:
  sidecar: false
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
# Two backends whose apps terminate TLS themselves (PASSTHROUGH targets):
# c with a sidecar, d without.
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: c}
spec:
  hostnames: [c.example.com]
  ports: [{name: https, port: 8443, tls: true}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: d}
spec:
  sidecar: false
  hostnames: [d.example.com]
  ports: [{name: https, port: 8443, tls: true}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: external}
spec:
  external: true
  sidecar: false
  hostnames: [api.example.com]
  ports: [{name: https, port: 443, tls: true}]
`

const (
	ingress   = "istio-system/istio-ingressgateway"
	gatewayID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"
)

// gatewayServer is a Gateway on the ingress gateway with one server.
func gatewayServer(port int, protocol, hosts, tls string) string {
	s := `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ` + itoa(port) + `, name: p, protocol: ` + protocol + `}
    hosts: ` + hosts + `
`
	if tls != "" {
		s += "    tls: " + tls + "\n"
	}
	return s + "---\n"
}

// httpToB binds b.example.com's http routes to the gateway.
const httpToB = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.example.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
---
`

// sniToCD routes passthrough TLS by SNI to c and d.
const sniToCD = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cd}
spec:
  hosts: [c.example.com, d.example.com]
  gateways: [istio-system/gw]
  tls:
  - match: [{sniHosts: [c.example.com]}]
    route: [{destination: {host: c.default.svc.cluster.local, port: {number: 8443}}}]
  - match: [{sniHosts: [d.example.com]}]
    route: [{destination: {host: d.default.svc.cluster.local, port: {number: 8443}}}]
---
`

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestGateways(t *testing.T) {
	ingressCA := harness.WithTLS(mesh.CheckTLS{CA: []string{"ingress"}})
	withCert := func(ca string) harness.CallOption {
		return harness.WithTLS(mesh.CheckTLS{CA: []string{"ingress"}, ClientCert: ca})
	}
	const bHTTPS = "https://b.example.com/"
	const gwDoc = "https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode"
	okTLS := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.MTLS), harness.ExpectPeer(gatewayID))
	rows := []row{
		{name: "HTTP", cite: "https://istio.io/latest/docs/tasks/traffic-management/ingress/ingress-control/; pilot/pkg/networking/core/gateway.go",
			config: gatewayServer(80, "HTTP", "[b.example.com]", "") + httpToB,
			calls: []callSpec{
				// Upstream from a gateway follows auto mTLS like a sidecar.
				call("plain", "outside/curl", "http://b.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID)),
			}},
		// A server port that is a port of the gateway's Service listens on
		// its targetPort (80 -> 8080): clients reach the gateway through
		// the Service's cluster IP (kube-proxy's DNAT, or a sidecar's
		// endpoints), and a check via the gateway dials its pod where the
		// Service sends port 80. Hosts "*" so a call naming the Service is
		// routed too.
		{name: "Service_port_to_targetPort", cite: "pilot/pkg/model/gateway.go (mergeGateways, resolvePorts); pilot/pkg/networking/core/gateway.go (buildGatewayListeners)",
			config: gatewayServer(80, "HTTP", `["*"]`, "") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: any}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
---
`,
			calls: []callSpec{
				call("via-gateway-pod", "outside/curl", "http://b.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				call("cluster-ip-no-sidecar", "outside/curl", "http://istio-ingressgateway.istio-system/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				call("service-from-sidecar", "client", "http://istio-ingressgateway.istio-system/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID)),
			}},
		// httpsRedirect is per server: the redirect-only server (no
		// VirtualService) answers 301 for its host; the other server on
		// the same port keeps serving plain HTTP.
		{name: "httpsRedirect_per_server", cite: "https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings; pilot/pkg/networking/core/gateway.go (buildGatewayHTTPRouteConfig)",
			config: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http-redirect, protocol: HTTP}
    hosts: [a.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [b.example.com]
---
` + httpToB,
			calls: []callSpec{
				call("redirect-only-server", "outside/curl", "http://a.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.HTTP(301)), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
				call("other-server-not-redirected", "outside/curl", "http://b.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID)),
			}},
		{name: "HTTPS_SIMPLE", cite: gwDoc, config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred}") + httpToB,
			calls: []callSpec{
				call("no-client-cert", "outside/curl", bHTTPS, harness.Via(ingress), ingressCA, okTLS),
				// No SNI: the server's hosts are matched on SNI, so no filter
				// chain matches and the gateway closes the connection during
				// the client's handshake (pilot/pkg/networking/core/gateway.go).
				call("no-SNI", "outside/curl", bHTTPS, harness.Via(ingress), harness.WithTLS(mesh.CheckTLS{SNI: sni(""), CA: []string{"ingress"}}),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("filter_chain_not_found")),
			}},
		{name: "HTTPS_MUTUAL", cite: gwDoc, config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: MUTUAL, credentialName: b-cred}") + httpToB,
			calls: []callSpec{
				call("trusted-cert", "outside/curl", bHTTPS, harness.Via(ingress), withCert("client"),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				call("no-cert", "outside/curl", bHTTPS, harness.Via(ingress), ingressCA,
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
				// With TLS 1.3 the client finishes its handshake before the
				// server has checked the client certificate: the rejection
				// arrives as a tls-error or a reset, depending on whether the
				// alert beats the request (see call in rows_test.go).
				call("untrusted-cert", "outside/curl", bHTTPS, harness.Via(ingress), withCert("untrusted"),
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		{name: "HTTPS_OPTIONAL_MUTUAL", cite: gwDoc, config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: OPTIONAL_MUTUAL, credentialName: b-cred}") + httpToB,
			calls: []callSpec{
				call("trusted-cert", "outside/curl", bHTTPS, harness.Via(ingress), withCert("client"),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				call("no-cert", "outside/curl", bHTTPS, harness.Via(ingress), ingressCA, okTLS),
				// A certificate that is sent is verified (failure form as above).
				call("untrusted-cert", "outside/curl", bHTTPS, harness.Via(ingress), withCert("untrusted"),
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// PASSTHROUGH routes on SNI and forwards the client's TLS untouched;
		// a backend with a sidecar gets it inside auto mTLS. A wrong route
		// would show as a certificate mismatch (each app's certificate
		// carries only its own hostname).
		{name: "PASSTHROUGH_by_SNI", cite: gwDoc + "; pilot/pkg/networking/core/gateway.go",
			config: gatewayServer(443, "HTTPS", "[c.example.com, d.example.com]", "{mode: PASSTHROUGH}") + sniToCD,
			calls: []callSpec{
				call("to-c-sidecar", "outside/curl", "https://c.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.Layers(outcome.MTLS, outcome.TLS)), harness.ExpectPeer(gatewayID)),
				call("to-d-naked", "outside/curl", "https://d.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// PASSTHROUGH plus a DR that originates TLS: the gateway wraps the
		// client's TLS in its own; d's app unwraps one layer and reads a
		// ClientHello where it expects HTTP.
		// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#gateways
		{name: "PASSTHROUGH_plus_DR_SIMPLE", cite: "https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#gateways",
			config: gatewayServer(443, "HTTPS", "[c.example.com, d.example.com]", "{mode: PASSTHROUGH}") + sniToCD + `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec:
  host: d.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: SIMPLE, sni: d.example.com, caCertificates: /etc/meshtls/ca/app.pem}
`,
			calls: []callSpec{
				call("double-TLS", "outside/curl", "https://d.example.com/", harness.Via(ingress),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS, outcome.Layers(outcome.TLS, outcome.TLS))),
			}},
		// TLS terminated at the gateway: tcp routes apply.
		{name: "TLS_terminated_to_TCP", cite: gwDoc + "; pilot/pkg/networking/core/gateway.go",
			config: gatewayServer(443, "TLS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred}") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.example.com]
  gateways: [istio-system/gw]
  tcp:
  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 9000}}}]
`,
			calls: []callSpec{
				call("tls-to-tcp", "outside/curl", "tls://b.example.com:443", harness.Via(ingress), ingressCA, okTLS),
			}},
		// A VirtualService whose block does not fit its server: an HTTPS
		// SIMPLE server takes http routes, so tls routes do not apply and
		// the gateway answers 404 (NR).
		{name: "VS_block_mismatch", cite: gwDoc + "; pilot/pkg/networking/core/gateway.go",
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred}") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.example.com]
  gateways: [istio-system/gw]
  tls:
  - match: [{sniHosts: [b.example.com]}]
    route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
`,
			calls: []callSpec{
				call("tls-routes-on-terminated", "outside/curl", bHTTPS, harness.Via(ingress), ingressCA,
					harness.ExpectResult(outcome.HTTP(404)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("NR")),
			}},
		// Egress gateway originating TLS: the sidecar sends plain HTTP for
		// api.example.com to the egress gateway's HTTP server, the gateway
		// originates TLS to the external server. As in the task's first
		// variant (no DR for the gateway's own host) the first hop is
		// plaintext; the task's mTLS variant adds a DR ISTIO_MUTUAL and an
		// ISTIO_MUTUAL server on 443.
		// https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway-tls-origination/
		{name: "egress_gateway_origination", cite: "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway-tls-origination/",
			config: `
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-via-egress, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/egress, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, port: {number: 80}}}]
  - match: [{gateways: [istio-system/egress], port: 80}]
    route: [{destination: {host: api.example.com, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-originate, namespace: default}
spec:
  host: api.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}
`,
			calls: []callSpec{
				call("originate", "client", "http://api.example.com/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// Egress gateway for HTTPS: the app's own TLS to api.example.com
		// goes, by SNI, from its sidecar to the egress gateway (a tls
		// route bound to mesh) and through the gateway's PASSTHROUGH
		// server to the external host, untouched. The gateway has no
		// sidecar label, so the first hop is the app's TLS without mTLS.
		{name: "egress_gateway_https_passthrough", cite: "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway/#egress-gateway-for-https-traffic; pilot/pkg/networking/core/tls.go (buildSidecarOutboundTLSFilterChainOpts)",
			config: `
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: https, port: 443}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [api.example.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-api, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: api}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-api-through-egress-gateway, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match: [{gateways: [mesh], port: 443, sniHosts: [api.example.com]}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: api, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443, sniHosts: [api.example.com]}]
    route: [{destination: {host: api.example.com, port: {number: 443}}, weight: 100}]
`,
			calls: []callSpec{
				call("https-via-egress", "client", "https://api.example.com/", harness.WithTLS(mesh.CheckTLS{CA: []string{"app"}}),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
	}
	runRows(t, gatewayWorkloads, rows)
}
