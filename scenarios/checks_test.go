package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// What a check can say about the client's TLS offer and about each hop:
// TLS version range, cipher and ALPN offer, a client certificate with a
// chosen SAN from a named CA, the negotiated version, SNI and ALPN offer per
// hop, and result fail. Each row cites the Istio rule it exercises.

func TestCheckExpressiveness(t *testing.T) {
	const bHTTPS = "https://b.example.com/"
	const serverTLS = "https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings; pilot/pkg/networking/core/gateway.go"
	offer := func(f func(*mesh.CheckTLS)) harness.CallOption {
		t := mesh.CheckTLS{CA: []string{"ingress"}}
		f(&t)
		return harness.WithTLS(t)
	}
	hop := func(version, sni string, alpn ...string) mesh.HopExpect {
		return mesh.HopExpect{TLSVersion: version, SNI: sni, ALPN: alpn}
	}
	okTLS := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.MTLS), harness.ExpectPeer(gatewayID))
	rows := []row{
		// minProtocolVersion / maxProtocolVersion bound what the gateway
		// accepts; a client whose range does not overlap fails its handshake.
		{name: "tls_version_range", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, minProtocolVersion: TLSV1_3}") + httpToB,
			calls: []callSpec{
				call("tls13-client", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) {}), okTLS,
					harness.ExpectHops(hop("TLSv1.3", "b.example.com", "http/1.1"))),
				call("tls12-only-client", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.MaxVersion = "TLSV1_2" }),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		{name: "tls_max_version", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, maxProtocolVersion: TLSV1_2}") + httpToB,
			calls: []callSpec{
				call("negotiates-tls12", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) {}), okTLS,
					harness.ExpectHops(hop("TLSv1.2", "b.example.com"))),
				call("tls13-only-client", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.MinVersion = "TLSV1_3" }),
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// cipherSuites restrict TLS 1.2 (TLS 1.3 suites are not configurable
		// in Envoy); the harness's certificates are ECDSA.
		{name: "cipher_offer", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, maxProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]}") + httpToB,
			calls: []callSpec{
				call("allowed-cipher", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.Ciphers = []string{"ECDHE-ECDSA-AES256-GCM-SHA384"} }), okTLS,
					harness.ExpectHops(hop("TLSv1.2", "b.example.com"))),
				call("other-cipher", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.Ciphers = []string{"ECDHE-ECDSA-AES128-GCM-SHA256"} }),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// An HTTPS server offers h2 and http/1.1 (util.ALPNHttp in
		// pilot/pkg/networking/util/util.go); a client that offers only h2
		// speaks HTTP/2 to the gateway.
		{name: "alpn_offer", cite: serverTLS + "; pilot/pkg/networking/util/util.go (ALPNHttp)",
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred}") + httpToB,
			calls: []callSpec{
				call("h2-only", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ALPN = []string{"h2"} }), okTLS,
					harness.ExpectHops(hop("TLSv1.3", "b.example.com", "h2"))),
				call("no-alpn", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ALPN = []string{} }), okTLS,
					harness.ExpectHops(mesh.HopExpect{TLSVersion: "TLSv1.3", ALPN: []string{}})),
			}},
		// MUTUAL with subjectAltNames: the client certificate must carry one
		// of them (URI or DNS) besides chaining to the credential's CA.
		{name: "client_cert_SAN", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]",
				"{mode: MUTUAL, credentialName: b-cred, subjectAltNames: [spiffe://partner.example/app, app.partner.example]}") + httpToB,
			calls: []callSpec{
				call("uri-san", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientURI = "client", "spiffe://partner.example/app" }),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				call("dns-san", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientDNS = "client", "app.partner.example" }),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS, outcome.MTLS), harness.ExpectPeer(gatewayID)),
				// The fixed client certificate has neither SAN.
				call("other-san", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ClientCert = "client" }),
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
				// The right SAN from a CA the credential does not trust.
				call("right-san-wrong-ca", "outside/curl", bHTTPS, harness.Via(ingress), offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientURI = "mesh", "spiffe://partner.example/app" }),
					harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// Sidecar to sidecar: ISTIO_MUTUAL with Istio's SNI
		// outbound_.PORT_._.HOST and, for TCP, the ALPN istio-peer-exchange,
		// istio (pilot/pkg/networking/core/cluster_tls.go, buildIstioMutualTLS;
		// util.ALPNInMeshWithMxc); TLS 1.3 between Envoys.
		{name: "mesh_hop_tls", cite: "pilot/pkg/networking/core/cluster_tls.go; pilot/pkg/networking/util/util.go (ALPNInMeshWithMxc); pilot/pkg/xds/filters/filters.go (Alpn)",
			config: meshPA("STRICT"),
			calls: []callSpec{
				call("tcp", "client", "tcp://b.default.svc.cluster.local:9000",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectHops(hop("TLSv1.3", "outbound_.9000_._.b.default.svc.cluster.local", "istio-peer-exchange", "istio"))),
				// HTTP: Istio's istio.alpn filter replaces the cluster's
				// list per request with istio-http/1.1, istio, http/1.1
				// (pilot/pkg/xds/filters/filters.go, Alpn, mtlsHTTP11ALPN).
				call("http", "client", "http://b.default.svc.cluster.local:8080/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectHops(hop("TLSv1.3", "outbound_.8080_._.b.default.svc.cluster.local", "istio-http/1.1", "istio", "http/1.1"))),
				// STRICT refuses a plaintext client in some way.
				call("plaintext-refused", "outside/curl", "tcp://b.default.svc.cluster.local:9000",
					harness.ExpectNotOK(), harness.ExpectHops(hop(outcome.Absent, outcome.Absent))),
			}},
	}
	runRows(t, gatewayWorkloads, rows)
}
