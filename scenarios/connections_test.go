package scenarios

import (
	"strings"
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/outcome"
)

// The four connections of a sidecar, as the seed describes them
// (https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#sidecars):
//
//   - external inbound: a peer to this sidecar; the mode is PeerAuthentication's;
//   - local inbound: this sidecar to its own app; forwarded as is, never originated;
//   - local outbound: the app to its own sidecar; the protocol comes from the
//     port's name, its appProtocol, or detection;
//   - external outbound: this sidecar to the destination; the mode is the
//     DestinationRule's, or auto mTLS.

// clientWorkloads are the two callers most rows use: a client with a
// sidecar and one without.
const clientWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: naked-client}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
---
`

const connectionsWorkloads = clientWorkloads + `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports:
  - {name: http, port: 8080}
  - {name: https, port: 8443, tls: true}   # the app terminates TLS itself
  - {name: web, port: 7070}                # no protocol prefix: detected
  - {name: db, port: 7071, appProtocol: http}   # appProtocol wins over the name
  - {name: http-legacy, port: 8444, tls: true}  # an app speaking TLS on a port declared http
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: external}
spec:
  external: true
  sidecar: false
  hostnames: [api.example.com]
  ports: [{name: https, port: 443, tls: true}, {name: http, port: 8080}]
`

// apiSE registers the external server: port 80 (HTTP, sent on to the app's
// TLS port 443, so a DR can originate TLS), 443 (the app's own TLS) and 8080
// (plain HTTP).
const apiSE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 443}
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 8080, name: http-plain, protocol: HTTP}
---
`

// apiSEWithSANs is apiSE with the entry's subjectAltNames.
func apiSEWithSANs(sans string) string {
	return strings.Replace(apiSE, "resolution: DNS", "resolution: DNS\n  subjectAltNames: "+sans, 1)
}

const sanCite = "pilot/pkg/networking/core/cluster_tls.go (constructUpstreamTLS: the ServiceEntry's subjectAltNames when the DestinationRule has none); https://istio.io/latest/docs/reference/config/networking/service-entry/#ServiceEntry"

func apiDR(tls string) string {
	return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: ` + tls + `
---
`
}

func TestSidecarConnections(t *testing.T) {
	const (
		srv      = "server.default.svc.cluster.local"
		appTLS   = "https://" + srv + ":8443/"
		meshCite = "https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#sidecars"
	)
	plainOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	mtlsOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID))
	rows := []row{
		// External inbound: the server sidecar's mode is PeerAuthentication's
		// (pilot/pkg/networking/core/filterchain_options.go).
		{name: "external_inbound_PERMISSIVE", cite: meshCite + "; pilot/pkg/networking/core/filterchain_options.go", calls: []callSpec{
			call("from-sidecar", "client", "http://"+srv+":8080/", mtlsOK),
			call("from-naked", "naked-client", "http://"+srv+":8080/", plainOK),
		}},
		{name: "external_inbound_STRICT", cite: meshCite + "; pilot/pkg/networking/core/filterchain_options.go", config: meshPA("STRICT"), calls: []callSpec{
			call("from-sidecar", "client", "http://"+srv+":8080/", mtlsOK),
			call("from-naked", "naked-client", "http://"+srv+":8080/",
				harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
		}},
		{name: "external_inbound_DISABLE", cite: meshCite + "; pilot/pkg/xds/endpoints/mtls_checker.go", config: meshPA("DISABLE"), calls: []callSpec{
			call("from-sidecar", "client", "http://"+srv+":8080/", plainOK),
			call("from-naked", "naked-client", "http://"+srv+":8080/", plainOK),
		}},
		// Local inbound: the app's own TLS is forwarded as is. From a naked
		// client the wire is the app's TLS; from a client sidecar auto mTLS
		// wraps it (the port is https, so the sidecar treats it as opaque TCP).
		// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#sidecars
		// ("the sidecar forwards the traffic as is"), pkg/config/protocol/instance.go.
		{name: "local_inbound_app_TLS", cite: meshCite + "; pkg/config/protocol/instance.go", calls: []callSpec{
			call("from-naked", "naked-client", appTLS,
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			call("from-sidecar", "client", appTLS,
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Layers(outcome.MTLS, outcome.TLS)), harness.ExpectPeer(clientID)),
		}},
		{name: "local_inbound_app_TLS_STRICT", cite: meshCite, config: meshPA("STRICT"), calls: []callSpec{
			// STRICT terminates any TLS on the port with the workload's mesh
			// certificate and wants a client certificate: the app's own TLS
			// from outside the mesh no longer reaches the app (the client
			// rejects the mesh certificate first).
			call("from-naked", "naked-client", appTLS,
				harness.ExpectResult(outcome.TLSError), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			call("from-sidecar", "client", appTLS,
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Layers(outcome.MTLS, outcome.TLS)), harness.ExpectPeer(clientID)),
		}},
		// Local outbound: the port's protocol picks the outbound listener.
		// pkg/config/kube/conversion.go, pkg/config/protocol/instance.go;
		// https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
		{name: "local_outbound_protocol", cite: "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/; pkg/config/kube/conversion.go", calls: []callSpec{
			call("name-http", "client", "http://"+srv+":8080/", mtlsOK),
			call("appProtocol-http", "client", "http://"+srv+":7071/", mtlsOK),
			// An app that speaks TLS to a port declared http: the client's
			// sidecar parses the ClientHello as HTTP and answers 400, which
			// the client's TLS stack cannot read.
			// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#sidecars
			call("TLS-to-http-port", "client", "https://"+srv+":8444/", harness.ExpectResult(outcome.TLSError)),
		}},
		// A port without protocol prefix is sniffed: HTTP goes through the
		// client's HCM and out with Istio's HTTP ALPN (istio.alpn, set per
		// request), so the server's mtls-http chain verifies the peer.
		{name: "local_outbound_protocol_detected", cite: "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/; pilot/pkg/networking/core/cluster_tls.go; pilot/pkg/xds/filters/filters.go (Alpn)", calls: []callSpec{
			call("detected", "client", "http://"+srv+":7070/", mtlsOK),
		}},
		// External outbound: the DestinationRule decides, else auto mTLS
		// (plaintext to a MESH_EXTERNAL service).
		// pilot/pkg/networking/core/cluster_tls.go; pilot/pkg/model/push_context.go.
		{name: "external_outbound_auto", cite: "pilot/pkg/networking/core/cluster_tls.go; https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#auto-mtls", config: apiSE, calls: []callSpec{
			call("plain-http", "client", "http://api.example.com:8080/", plainOK),
			call("app-tls-passes", "client", "https://api.example.com/",
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
		}},
		{name: "external_outbound_DISABLE", cite: "pilot/pkg/networking/core/cluster_tls.go", config: apiSE + apiDR("{mode: DISABLE}"), calls: []callSpec{
			// Plaintext to the app's TLS port: the app rejects it.
			call("http-to-tls-port", "client", "http://api.example.com/",
				harness.ExpectResult(outcome.HTTP(400)), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
		}},
		{name: "external_outbound_SIMPLE", cite: "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-tls-origination/; pilot/pkg/networking/core/cluster_tls.go", config: apiSE + apiDR("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}"), calls: []callSpec{
			call("originate", "client", "http://api.example.com/",
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
		}},
		{name: "external_outbound_MUTUAL", cite: "https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings; pilot/pkg/networking/core/cluster_tls.go", config: apiSE + apiDR("{mode: MUTUAL, credentialName: api-client}\n  workloadSelector: {matchLabels: {app: client}}"), calls: []callSpec{
			// A sidecar honours credentialName only from a DestinationRule
			// with a workloadSelector (cluster_tls.go, buildUpstreamClusterTLSContext).
			call("originate", "client", "http://api.example.com/",
				harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer("CN=meshtls-client,O=meshtls")),
		}},
		// A ServiceEntry's subjectAltNames are the names SIMPLE (and
		// MUTUAL) origination verifies when the DestinationRule gives none:
		// the server's certificate carries api.example.com, so a list
		// naming it passes and a list naming another host fails the
		// handshake on the SAN check.
		{name: "5-ServiceEntry_SANs_match", cite: sanCite, config: apiSEWithSANs("[api.example.com]") + apiDR("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}"), calls: []callSpec{
			call("originate", "client", "http://api.example.com/", harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
		}},
		{name: "5-ServiceEntry_SANs_mismatch", cite: sanCite, config: apiSEWithSANs("[billing.example.com]") + apiDR("{mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}"), calls: []callSpec{
			call("originate", "client", "http://api.example.com/", harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("SAN_matcher")),
		}},
		// ISTIO_MUTUAL to a server outside the mesh fails the handshake: the
		// server speaks none of Istio's ALPN values (our app answers
		// no_application_protocol before any certificate is checked), and
		// its certificate is not from the mesh root anyway.
		{name: "external_outbound_ISTIO_MUTUAL", cite: "pilot/pkg/networking/core/cluster_tls.go", config: apiSE + apiDR("{mode: ISTIO_MUTUAL}"), calls: []callSpec{
			call("originate", "client", "http://api.example.com/",
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UF")),
		}},
	}
	runRows(t, connectionsWorkloads, rows)
}
