package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Server-first protocols (MySQL, SMTP: the server greets, the client waits)
// against Istio's protocol detection. Every inspector waits for the
// client's first bytes and Istio sets no detection timeout
// (meshConfig.protocolDetectionTimeout 0s), so where one runs such a call
// never starts. The TLS inspector runs on an inbound port only when one of
// its filter chains matches TLS (PERMISSIVE, STRICT), the HTTP inspector on
// ports whose protocol is detected.
// https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/ (Server First Protocols);
// pilot/pkg/networking/core/listener_inbound.go (populateListenerFilters, buildInboundListener);
// pilot/pkg/networking/core/listener.go (buildListenerFromEntry); pkg/config/mesh/mesh.go (DefaultMeshConfig).

const serverFirstWorkloads = clientWorkloads + `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: db}
spec:
  ports:
  - {name: tcp-greet, port: 7000, serverFirst: true}   # declared TCP
  - {name: greet, port: 7001, serverFirst: true}       # no protocol: detected
`

const (
	dbTCP  = "tcp://db.default.svc.cluster.local:7000"
	dbAuto = "tcp://db.default.svc.cluster.local:7001"
)

// serverFirst makes the call wait for the server's greeting, sending nothing.
func serverFirst() harness.CallOption { return func(c *mesh.Check) { c.ServerFirst = true } }

func TestServerFirstProtocols(t *testing.T) {
	const cite = "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/ (Server First Protocols); pilot/pkg/networking/core/listener_inbound.go (populateListenerFilters)"
	mtlsOK := harness.Options(serverFirst(), harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID))
	plainOK := harness.Options(serverFirst(), harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	// The greeting never comes: an inspector holds the connection until
	// the client's deadline.
	waits := harness.Options(serverFirst(), harness.ExpectResult(outcome.Timeout))
	rows := []row{
		{
			// STRICT on a port declared TCP: the client sidecar speaks first
			// (its TLS ClientHello), the server sidecar terminates mTLS and
			// the app's greeting flows back.
			name: "13-server_first_STRICT_declared_TCP", cite: cite, config: meshPA("STRICT"),
			calls: []callSpec{call("from-sidecar", "client", dbTCP, mtlsOK)},
		},
		{
			// PERMISSIVE: the TLS inspector on the port waits for a first
			// byte a plaintext client of a server-first protocol never
			// sends; a sidecar client still works (it sends TLS first).
			name: "13-server_first_PERMISSIVE", cite: cite,
			calls: []callSpec{
				call("from-sidecar", "client", dbTCP, mtlsOK),
				call("from-naked-hangs", "naked-client", dbTCP, waits),
			},
		},
		{
			// DISABLE: no chain on the port matches TLS, so no inspector
			// runs there and the plaintext client gets its greeting (the
			// docs' second remedy).
			name: "13-server_first_DISABLE", cite: cite, config: meshPA("DISABLE"),
			calls: []callSpec{call("from-naked", "naked-client", dbTCP, plainOK)},
		},
		{
			// A port whose protocol is detected: the client sidecar's
			// outbound HTTP inspector waits for the app's first bytes, so
			// even a mesh client hangs (declare the port TCP).
			name: "13-server_first_detected_port", cite: cite + "; pilot/pkg/networking/core/listener.go (buildListenerFromEntry)", config: meshPA("STRICT"),
			calls: []callSpec{call("from-sidecar-hangs", "client", dbAuto, waits)},
		},
	}
	runRows(t, serverFirstWorkloads, rows)
}
