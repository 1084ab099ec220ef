package scenarios

import (
	"testing"

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
	offer := func(f func(*mesh.CheckTLS)) *mesh.CheckTLS {
		t := &mesh.CheckTLS{CA: []string{"ingress"}}
		f(t)
		return t
	}
	hop := func(version, sni string, alpn ...string) mesh.HopExpect {
		return mesh.HopExpect{TLSVersion: version, SNI: sni, ALPN: alpn}
	}
	withHops := func(e mesh.Expect, hops ...mesh.HopExpect) mesh.Expect { e.Hops = hops; return e }
	okTLS := expect(outcome.OK, w(outcome.TLS, outcome.MTLS), gatewayID, "")
	rows := []row{
		// minProtocolVersion / maxProtocolVersion bound what the gateway
		// accepts; a client whose range does not overlap fails its handshake.
		{name: "tls_version_range", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, minProtocolVersion: TLSV1_3}") + httpToB,
			checks: []check{
				{name: "tls13-client", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) {}),
					want: withHops(okTLS, hop("TLSv1.3", "b.example.com", "http/1.1"))},
				{name: "tls12-only-client", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) { t.MaxVersion = "TLSV1_2" }),
					want: expect(outcome.TLSError, w(outcome.TLS), outcome.PeerNone, "")},
			}},
		{name: "tls_max_version", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, maxProtocolVersion: TLSV1_2}") + httpToB,
			checks: []check{
				{name: "negotiates-tls12", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) {}),
					want: withHops(okTLS, hop("TLSv1.2", "b.example.com"))},
				{name: "tls13-only-client", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) { t.MinVersion = "TLSV1_3" }),
					want: expect(outcome.Failed, w(outcome.TLS), outcome.PeerNone, "")},
			}},
		// cipherSuites restrict TLS 1.2 (TLS 1.3 suites are not configurable
		// in Envoy); the harness's certificates are ECDSA.
		{name: "cipher_offer", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred, maxProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]}") + httpToB,
			checks: []check{
				{name: "allowed-cipher", from: "outside/curl", to: bHTTPS, via: ingress,
					tls:  offer(func(t *mesh.CheckTLS) { t.Ciphers = []string{"ECDHE-ECDSA-AES256-GCM-SHA384"} }),
					want: withHops(okTLS, hop("TLSv1.2", "b.example.com"))},
				{name: "other-cipher", from: "outside/curl", to: bHTTPS, via: ingress,
					tls:  offer(func(t *mesh.CheckTLS) { t.Ciphers = []string{"ECDHE-ECDSA-AES128-GCM-SHA256"} }),
					want: expect(outcome.TLSError, w(outcome.TLS), outcome.PeerNone, "")},
			}},
		// An HTTPS server offers h2 and http/1.1 (util.ALPNHttp in
		// pilot/pkg/networking/util/util.go); a client that offers only h2
		// speaks HTTP/2 to the gateway.
		{name: "alpn_offer", cite: serverTLS + "; pilot/pkg/networking/util/util.go (ALPNHttp)",
			config: gatewayServer(443, "HTTPS", "[b.example.com]", "{mode: SIMPLE, credentialName: b-cred}") + httpToB,
			checks: []check{
				{name: "h2-only", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) { t.ALPN = []string{"h2"} }),
					want: withHops(okTLS, hop("TLSv1.3", "b.example.com", "h2"))},
				{name: "no-alpn", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) { t.ALPN = []string{} }),
					want: withHops(okTLS, mesh.HopExpect{TLSVersion: "TLSv1.3", ALPN: []string{}})},
			}},
		// MUTUAL with subjectAltNames: the client certificate must carry one
		// of them (URI or DNS) besides chaining to the credential's CA.
		{name: "client_cert_SAN", cite: serverTLS,
			config: gatewayServer(443, "HTTPS", "[b.example.com]",
				"{mode: MUTUAL, credentialName: b-cred, subjectAltNames: [spiffe://partner.example/app, app.partner.example]}") + httpToB,
			checks: []check{
				{name: "uri-san", from: "outside/curl", to: bHTTPS, via: ingress,
					tls:  offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientURI = "client", "spiffe://partner.example/app" }),
					want: expect(outcome.OK, w(outcome.MTLS, outcome.MTLS), gatewayID, "")},
				{name: "dns-san", from: "outside/curl", to: bHTTPS, via: ingress,
					tls:  offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientDNS = "client", "app.partner.example" }),
					want: expect(outcome.OK, w(outcome.MTLS, outcome.MTLS), gatewayID, "")},
				// The fixed client certificate has neither SAN.
				{name: "other-san", from: "outside/curl", to: bHTTPS, via: ingress, tls: offer(func(t *mesh.CheckTLS) { t.ClientCert = "client" }),
					want: expect(outcome.Failed, w(outcome.TLS), outcome.PeerNone, "")},
				// The right SAN from a CA the credential does not trust.
				{name: "right-san-wrong-ca", from: "outside/curl", to: bHTTPS, via: ingress,
					tls:  offer(func(t *mesh.CheckTLS) { t.ClientCert, t.ClientURI = "mesh", "spiffe://partner.example/app" }),
					want: expect(outcome.Failed, w(outcome.TLS), outcome.PeerNone, "")},
			}},
		// Sidecar to sidecar: ISTIO_MUTUAL with Istio's SNI
		// outbound_.PORT_._.HOST and, for TCP, the ALPN istio-peer-exchange,
		// istio (pilot/pkg/networking/core/cluster_tls.go, buildIstioMutualTLS;
		// util.ALPNInMeshWithMxc); TLS 1.3 between Envoys.
		{name: "mesh_hop_tls", cite: "pilot/pkg/networking/core/cluster_tls.go; pilot/pkg/networking/util/util.go (ALPNInMeshWithMxc)",
			config: meshPA("STRICT"),
			checks: []check{
				{name: "tcp", from: "client", to: "tcp://b.default.svc.cluster.local:9000",
					want: withHops(expect(outcome.OK, w(outcome.MTLS), clientID, ""), hop("TLSv1.3", "outbound_.9000_._.b.default.svc.cluster.local", "istio-peer-exchange", "istio"))},
				// STRICT refuses a plaintext client in some way.
				{name: "plaintext-refused", from: "outside/curl", to: "tcp://b.default.svc.cluster.local:9000",
					want: withHops(expect(outcome.Failed, nil, "", ""), hop(outcome.Absent, outcome.Absent))},
			}},
	}
	runRows(t, gatewayWorkloads, rows)
}
