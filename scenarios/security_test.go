package scenarios

import (
	"testing"
	"time"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Security negatives: identities the receiver must refuse, and server
// certificates the originator must refuse.

const securityWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: external}
spec:
  external: true
  sidecar: false
  hostnames: [api.example.com]
  ports: [{name: https, port: 443, tls: true}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  sidecar: false
`

// identity returns a setup that gives ns/sa a certificate issued by the
// named CA with opts, and every other workload a fresh mesh identity.
func identity(ns, sa, ca string, opts ...certs.Option) func(*testing.T, *harness.Runtime) {
	return func(t *testing.T, rt *harness.Runtime) {
		t.Helper()
		resetIdentities(rt)
		if ca == "" {
			return
		}
		c, err := rt.Certs().Set().ByName(ca)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := c.IssueWorkload(ns, sa, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rt.Certs().SetWorkload(ns, sa, kp)
	}
}

// resetIdentities forgets swapped identities so the next push issues fresh
// mesh certificates.
func resetIdentities(rt *harness.Runtime) {
	rt.Certs().SetWorkload("default", "client", nil)
	rt.Certs().SetWorkload("default", "server", nil)
}

var expired = certs.WithValidity(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))

// inboundTLSCite: Istio's inbound mTLS server context.
const inboundTLSCite = "pilot/pkg/security/authn/utils/utils.go (BuildInboundTLS, SupportedCiphers); pilot/pkg/networking/plugin/authn/util.go (TrustDomainsForValidation); pilot/pkg/security/model/authentication.go (ApplyToCommonTLSContext: trust domains as SAN prefixes)"

// meshClient is a client without a sidecar speaking Istio mTLS itself: a
// mesh-CA certificate with uri, trusting the mesh CA; with ciphers, TLS 1.2
// with only those suites.
func meshClient(uri string, ciphers ...string) harness.CallOption {
	t := mesh.CheckTLS{CA: []string{"mesh"}, ClientCert: "mesh", ClientURI: uri}
	if len(ciphers) > 0 {
		t.MaxVersion, t.Ciphers = "TLSV1_2", ciphers
	}
	return harness.WithTLS(t)
}

func TestSecurityNegatives(t *testing.T) {
	const (
		srv     = "http://server.default.svc.cluster.local:8080/"
		srvTLS  = "https://server.default.svc.cluster.local:8080/"
		sdsCite = "https://istio.io/latest/docs/concepts/security/#mutual-tls-authentication; pilot/pkg/networking/core/filterchain_options.go"
	)
	apiSimple := func(tls string) string {
		return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 443}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.example.com
  trafficPolicy:
    tls: ` + tls + `
---
`
	}
	// The certificate rows come first and fail their handshakes, so no
	// client-to-server connection is pooled before them (see baseline).
	rows := []row{
		// A client sidecar whose workload certificate comes from a CA the
		// mesh does not trust: the STRICT server refuses the handshake.
		// With TLS 1.3 the client's proxy has finished its side of the
		// handshake before the server checks the certificate, so Envoy
		// reports the refusal as a connection termination (UC), not UF.
		{name: "untrusted_client_cert_vs_STRICT", cite: sdsCite, setup: identity("default", "client", "untrusted"), config: meshPA("STRICT"), calls: []callSpec{
			call("untrusted-CA", "client", srv,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UC")),
		}},
		// An expired client certificate is refused the same way (UC, as above).
		{name: "expired_client_cert_vs_STRICT", cite: sdsCite, setup: identity("default", "client", "mesh", expired), config: meshPA("STRICT"), calls: []callSpec{
			call("expired", "client", srv,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UC")),
		}},
		// An expired server certificate: the client sidecar refuses it.
		{name: "expired_server_cert", cite: sdsCite, setup: identity("default", "server", "mesh", expired), config: meshPA("STRICT"), calls: []callSpec{
			call("expired", "client", srv,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("CERTIFICATE_VERIFY_FAILED")),
		}},
		// Istio's inbound mTLS accepts a client certificate only with a
		// SPIFFE URI in the mesh's trust domain (prefix
		// spiffe://cluster.local/), and TLS 1.2 only with six AES-GCM
		// suites. Sidecars speak TLS 1.3 with each other, so a client
		// without a sidecar shows both: it speaks Istio mTLS itself with a
		// mesh-CA certificate (the server's certificate also names its
		// host, so the client can verify it).
		{name: "inbound_mTLS_trust_domain_and_ciphers", cite: inboundTLSCite,
			setup:  identity("default", "server", "mesh", certs.WithDNSNames("server.default.svc.cluster.local")),
			config: meshPA("STRICT"),
			calls: []callSpec{
				call("in-trust-domain", "plain", srvTLS, meshClient("spiffe://cluster.local/ns/default/sa/plain"),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/plain")),
				call("other-trust-domain", "plain", srvTLS, meshClient("spiffe://other.example/ns/default/sa/plain"),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
				call("tls12-istio-cipher", "plain", srvTLS, meshClient("spiffe://cluster.local/ns/default/sa/plain", "ECDHE-ECDSA-AES128-GCM-SHA256"),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/plain"), harness.ExpectHops(mesh.HopExpect{TLSVersion: "TLSv1.2"})),
				call("tls12-other-cipher", "plain", srvTLS, meshClient("spiffe://cluster.local/ns/default/sa/plain", "ECDHE-ECDSA-CHACHA20-POLY1305"),
					harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// Baseline under the same config with fresh identities, so the
		// negatives above fail for the reason they name. It comes after
		// them on purpose: a certificate pushed over SDS applies to new
		// connections only, and a pooled mTLS connection made here would
		// carry later calls with the old certificates (as in Envoy
		// everywhere: rotation does not close live connections).
		{name: "baseline_STRICT", cite: sdsCite, setup: identity("", "", ""), config: meshPA("STRICT"), calls: []callSpec{
			call("mesh-identity", "client", srv, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID)),
		}},
		// subjectAltNames replace the service accounts as the accepted
		// server identities: a list that misses the server's fails.
		// https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings;
		// pilot/pkg/networking/core/cluster_tls.go
		{name: "DR_subjectAltNames_mismatch", cite: "https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings", setup: identity("", "", ""), config: drServerTop + `    tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/someone-else]}
`, calls: []callSpec{
			call("wrong-SAN", "client", srv,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("SAN_matcher")),
		}},
		// Origination with auto SNI: the SNI (and the name the certificate
		// is checked against) comes from the request's authority. Rewriting
		// the authority to a name the server's certificate does not carry
		// fails verification.
		// pilot/pkg/networking/core/cluster_tls.go (auto SNI and auto SAN validation);
		// https://istio.io/latest/docs/ops/best-practices/security/#configure-tls-verification-in-destination-rule-when-using-tls-origination
		{name: "SIMPLE_SNI_mismatch", cite: "https://istio.io/latest/docs/ops/best-practices/security/#configure-tls-verification-in-destination-rule-when-using-tls-origination",
			setup: identity("", "", ""),
			config: apiSimple("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  http:
  - rewrite: {authority: other.example.com}
    route: [{destination: {host: api.example.com, port: {number: 80}}}]
`, calls: []callSpec{
				call("cert-not-for-SNI", "client", "http://api.example.com/",
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("verify_SAN_list")),
			}},
		// The same without the rewrite: SNI and certificate agree.
		{name: "SIMPLE_SNI_match", cite: "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-tls-origination/",
			setup:  identity("", "", ""),
			config: apiSimple("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}"),
			calls: []callSpec{
				call("cert-for-SNI", "client", "http://api.example.com/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// SIMPLE (and MUTUAL) origination offers TLS 1.2-1.3; Envoy's
		// client default alone would stop at TLS 1.2.
		{name: "SIMPLE_TLS_versions", cite: "pilot/pkg/networking/core/cluster_tls.go (constructUpstreamTLS, defaultUpstreamCommonTLSContext)",
			setup:  identity("", "", ""),
			config: apiSimple("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}"),
			calls: []callSpec{
				call("negotiates-tls13", "client", "http://api.example.com/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectHops(mesh.HopExpect{TLSVersion: "TLSv1.3"})),
			}},
		// SIMPLE origination without caCertificates trusts the system roots,
		// which trust none of our CAs (as a private CA in real life).
		{name: "SIMPLE_no_CA", cite: "https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings",
			setup:  identity("", "", ""),
			config: apiSimple("{mode: SIMPLE}"),
			calls: []callSpec{
				call("system-roots", "client", "http://api.example.com/",
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("CERTIFICATE_VERIFY_FAILED")),
			}},
	}
	runRows(t, securityWorkloads, rows)
}
