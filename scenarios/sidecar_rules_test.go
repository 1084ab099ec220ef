package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/outcome"
)

// Sidecar rules beyond the matrix: DestinationRule modes against each server
// mode, PeerAuthentication precedence (mesh < namespace < workload < port),
// and the mTLS migration of a service with a sidecar subset and a plain one.

const rulesWorkloads = clientWorkloads + `# The server's app terminates TLS itself on 8443 (certificate from the app CA).
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}, {name: tls, port: 8443, tls: true}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: naked-server}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
`

const (
	serverHTTP  = "http://server.default.svc.cluster.local:8080/"
	serverTCP   = "tcp://server.default.svc.cluster.local:9000"
	serverTLS   = "tcp://server.default.svc.cluster.local:8443"
	nakedHTTP   = "http://naked-server.default.svc.cluster.local:8080/"
	serverFQDN  = "server.default.svc.cluster.local"
	drServerTop = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: server, namespace: default}
spec:
  host: server.default.svc.cluster.local
  trafficPolicy:
`
)

// serverPA is a workload PeerAuthentication for the server, with optional
// port-level modes ("8080: {mode: DISABLE}" lines).
func serverPA(mode string, ports ...string) string {
	s := `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: ` + mode + `}
`
	if len(ports) > 0 {
		s += "  portLevelMtls:\n"
		for _, p := range ports {
			s += "    " + p + "\n"
		}
	}
	return s + "---\n"
}

func nsPA(mode string) string {
	return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: ` + mode + `}
---
`
}

func TestSidecarDestinationRules(t *testing.T) {
	rows := []row{
		{
			// A client sidecar told to send plaintext to a STRICT server: the
			// server's inbound has no plaintext chain and closes the
			// connection. Istio documents 503 with flag UF; Envoy 1.40 reports
			// UC (upstream connection termination) because the TCP connect
			// succeeded and the server closed it when no filter chain matched,
			// which Envoy counts as a reset after connect, not a connect failure.
			name:   "DISABLE_vs_STRICT",
			cite:   "https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#sidecars; pilot/pkg/networking/core/cluster_tls.go",
			config: meshPA("STRICT") + drServerTop + "    tls: {mode: DISABLE}\n",
			calls: []callSpec{
				call("http", "client", serverHTTP,
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UC")),
				call("tcp", "client", serverTCP,
					harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
			},
		},
		{
			// ISTIO_MUTUAL toward a server that cannot terminate it: a pod
			// without sidecar, or a sidecar whose PeerAuthentication is DISABLE
			// (TLS then reaches the plain app as bytes).
			name:   "ISTIO_MUTUAL_vs_plain",
			cite:   "tests/integration/security/reachability_test.go; pilot/pkg/networking/core/filterchain_options.go",
			config: meshDR("ISTIO_MUTUAL") + serverPA("DISABLE"),
			calls: []callSpec{
				call("naked-server", "client", nakedHTTP,
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UF")),
				call("sidecar-DISABLE", "client", serverHTTP,
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UF")),
			},
		},
		{
			// SIMPLE toward a sidecar whose app terminates TLS itself: a
			// PERMISSIVE inbound passes non-Istio TLS on a TCP-class port
			// (name tls) through to the app, which completes the handshake.
			// sni is set because a TCP proxy has no Host header for auto SNI.
			name: "SIMPLE_to_app_TLS_PERMISSIVE",
			cite: "pilot/pkg/networking/core/filterchain_options.go (passthrough of non-Istio TLS) (read from the source; this live row confirms it)",
			config: drServerTop + `    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: SIMPLE, sni: server.default.svc.cluster.local, caCertificates: /etc/meshtls/ca/app.pem}
`,
			calls: []callSpec{
				call("tls-port", "client", serverTLS,
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone)),
			},
		},
		{
			// The same origination against STRICT: the server's proxy
			// terminates with its mesh certificate, which the app CA does not
			// trust, and it wants a client certificate SIMPLE does not send.
			name: "SIMPLE_vs_STRICT",
			cite: "pilot/pkg/networking/core/filterchain_options.go (read from the source; this live row confirms it)",
			config: meshPA("STRICT") + drServerTop + `    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: SIMPLE, sni: server.default.svc.cluster.local, caCertificates: /etc/meshtls/ca/app.pem}
    - port: {number: 8080}
      tls: {mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}
`,
			calls: []callSpec{
				call("tls-port", "client", serverTLS,
					harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("CERTIFICATE_VERIFY_FAILED")),
				call("http-port", "client", serverHTTP,
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("CERTIFICATE_VERIFY_FAILED")),
			},
		},
		{
			// SIMPLE to a port declared http on a PERMISSIVE sidecar: an HTTP
			// port has no filter chain for non-Istio TLS.
			name: "SIMPLE_to_http_port_PERMISSIVE",
			cite: "pilot/pkg/networking/core/filterchain_options.go",
			config: drServerTop + `    portLevelSettings:
    - port: {number: 8080}
      tls: {mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}
`,
			calls: []callSpec{
				call("http-port", "client", serverHTTP,
					harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectReason("UF")),
			},
		},
		{
			// MUTUAL with a client certificate from the client CA toward the
			// app that terminates TLS: passed through by PERMISSIVE.
			name: "MUTUAL_to_app_TLS_PERMISSIVE",
			cite: "pilot/pkg/networking/core/cluster_tls.go (MUTUAL); pilot/pkg/networking/core/filterchain_options.go",
			config: drServerTop + `    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: MUTUAL, sni: server.default.svc.cluster.local, credentialName: server-client}
  workloadSelector: {matchLabels: {app: client}} # credentialName needs one on a sidecar (cluster_tls.go)
`,
			calls: []callSpec{
				call("tls-port", "client", serverTLS,
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer("CN=meshtls-client,O=meshtls")),
			},
		},
		{
			// MUTUAL with a non-mesh client certificate against STRICT fails:
			// only the mesh root verifies STRICT peers.
			name: "MUTUAL_vs_STRICT",
			cite: "pilot/pkg/networking/core/filterchain_options.go (read from the source; this live row confirms it)",
			config: meshPA("STRICT") + drServerTop + `    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: MUTUAL, sni: server.default.svc.cluster.local, credentialName: server-client}
  workloadSelector: {matchLabels: {app: client}} # credentialName needs one on a sidecar (cluster_tls.go)
`,
			calls: []callSpec{
				call("tls-port", "client", serverTLS,
					harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("CERTIFICATE_VERIFY_FAILED")),
			},
		},
		{
			// DestinationRule and VirtualService fields besides tls are
			// translated, not refused: load balancing, connection pool and
			// outlier detection leave ISTIO_MUTUAL as it is; a port-level
			// entry without tls replaces the rule's tls for its port (auto
			// mTLS there, still mTLS to a sidecar); a fault abort answers
			// from the client's sidecar (flag FI) while the other route keeps
			// its retries, timeout, header edits and CORS policy.
			name: "policy_fields_translated",
			cite: "pilot/pkg/networking/core/cluster_traffic_policy.go; pilot/pkg/model/destination_rule.go (MergeTrafficPolicy); pilot/pkg/networking/core/route/route.go (TranslateRoute, TranslateFault); https://istio.io/latest/docs/reference/config/networking/destination-rule/",
			config: drServerTop + `    tls: {mode: ISTIO_MUTUAL}
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 5s}, http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 10}}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5s, baseEjectionTime: 15s}
    portLevelSettings:
    - port: {number: 9000}
      connectionPool: {tcp: {maxConnections: 10}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: server, namespace: default}
spec:
  hosts: [server.default.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: server.default.svc.cluster.local}}]
  - retries: {attempts: 2, retryOn: "5xx,503", perTryTimeout: 5s}
    timeout: 20s
    headers: {request: {set: {x-meshtls: "1"}}}
    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [GET]}
    route: [{destination: {host: server.default.svc.cluster.local}}]
`,
			calls: []callSpec{
				call("http", "client", serverHTTP, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID)),
				call("fault-abort", "client", serverHTTP+"abort", harness.ExpectResult(outcome.HTTP(418)), harness.ExpectReason("FI")),
				call("tcp-port-level", "client", serverTCP,
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID)),
			},
		},
		{
			// A tcp route bound to mesh sends the client's TCP for server:9000
			// to naked-server: plaintext (no sidecar there) instead of the
			// mTLS the server's own sidecar would have answered.
			name: "VS_tcp_route_on_sidecar",
			cite: "pilot/pkg/networking/core/tls.go (buildSidecarOutboundTCPFilterChainOpts); https://istio.io/latest/docs/reference/config/networking/virtual-service/#TCPRoute",
			config: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: server-tcp, namespace: default}
spec:
  hosts: [server.default.svc.cluster.local]
  tcp:
  - match: [{port: 9000}]
    route: [{destination: {host: naked-server.default.svc.cluster.local, port: {number: 9000}}}]
`,
			calls: []callSpec{
				call("tcp-rerouted", "client", serverTCP,
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
			},
		},
	}
	runRows(t, rulesWorkloads, rows)
}

// PeerAuthentication precedence: port > workload > namespace > mesh; UNSET
// inherits. Probed with a client without sidecar (plaintext works unless the
// effective mode is STRICT) and a client sidecar (auto mTLS follows the
// effective mode of the endpoint's port).
// Source: pilot/pkg/security/authn/utils/utils.go, pilot/pkg/networking/core/filterchain_options.go;
// https://istio.io/latest/docs/reference/config/security/peer_authentication/
func TestPeerAuthenticationPrecedence(t *testing.T) {
	const cite = "https://istio.io/latest/docs/reference/config/security/peer_authentication/; pilot/pkg/security/authn/utils/utils.go"
	plainOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	refused := harness.Options(harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	mtlsOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID))
	rows := []row{
		{name: "mesh_STRICT_workload_PERMISSIVE", config: meshPA("STRICT") + serverPA("PERMISSIVE"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, plainOK),
			call("sidecar/http", "client", serverHTTP, mtlsOK),
		}},
		{name: "mesh_PERMISSIVE_workload_STRICT", config: meshPA("PERMISSIVE") + serverPA("STRICT"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, refused),
			call("sidecar/http", "client", serverHTTP, mtlsOK),
		}},
		{name: "mesh_STRICT_namespace_PERMISSIVE", config: meshPA("STRICT") + nsPA("PERMISSIVE"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, plainOK),
		}},
		{name: "namespace_STRICT_workload_UNSET", config: nsPA("STRICT") + serverPA("UNSET"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, refused),
		}},
		{name: "workload_STRICT_port_PERMISSIVE", config: serverPA("STRICT", "9000: {mode: PERMISSIVE}"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, refused),
			call("naked/tcp", "naked-client", serverTCP, plainOK),
		}},
		{name: "workload_PERMISSIVE_port_STRICT", config: serverPA("PERMISSIVE", "8080: {mode: STRICT}"), calls: []callSpec{
			call("naked/http", "naked-client", serverHTTP, refused),
			call("naked/tcp", "naked-client", serverTCP, plainOK),
		}},
		// Port DISABLE under a STRICT workload: auto mTLS reads the port's
		// mode and sends plaintext there, mTLS elsewhere
		// (pilot/pkg/xds/endpoints/mtls_checker.go).
		{name: "workload_STRICT_port_DISABLE", config: serverPA("STRICT", "8080: {mode: DISABLE}"), calls: []callSpec{
			call("sidecar/http", "client", serverHTTP, plainOK),
			call("sidecar/tcp", "client", serverTCP, mtlsOK),
			call("naked/http", "naked-client", serverHTTP, plainOK),
			call("naked/tcp", "naked-client", serverTCP, refused),
		}},
	}
	for i := range rows {
		rows[i].cite = cite
	}
	runRows(t, rulesWorkloads, rows)
}

// mTLS migration: namespace STRICT, Service b with subset v1 (sidecar) and
// v2 (no sidecar yet). A VirtualService routes /v1 and /v2 to each subset so
// every check reaches one subset; each row sets the DR's tls mode.
// Source: tests/integration/security/reachability_test.go (migration case);
// https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/;
// pilot/pkg/xds/endpoints/mtls_checker.go; pilot/pkg/networking/core/cluster_tls.go.
const migrationWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: sleep}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: sleep, namespace: legacy}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b-v1, labels: {app: b, version: v1}}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b-v2, labels: {app: b, version: v2}}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  selector: {app: b}
  ports: [{name: http, port: 8080}]
---
# One Service per version too, so a check can call each: a workload that
# Service b selects gets no implied Service of its own, as in Kubernetes.
apiVersion: v1
kind: Service
metadata: {name: b-v1, namespace: default}
spec:
  selector: {app: b, version: v1}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b-v2, namespace: default}
spec:
  selector: {app: b, version: v2}
  ports: [{name: http, port: 8080}]
`

func migrationConfig(tls string) string {
	return nsPA("STRICT") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.default.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /v1}}]
    route: [{destination: {host: b.default.svc.cluster.local, subset: v1}}]
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: b.default.svc.cluster.local, subset: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: b.default.svc.cluster.local
` + tls + `
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`
}

func TestMigration(t *testing.T) {
	const (
		cite = "tests/integration/security/reachability_test.go; https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/"
		v1   = "http://b.default.svc.cluster.local:8080/v1"
		v2   = "http://b.default.svc.cluster.local:8080/v2"
	)
	sleepID := "spiffe://cluster.local/ns/default/sa/sleep"
	// A client without sidecar does not see the VirtualService: it names
	// each pod's own Service.
	legacy := []callSpec{
		call("legacy-to-v1", "legacy/sleep", "http://b-v1.default.svc.cluster.local:8080/",
			harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
		call("legacy-to-v2", "legacy/sleep", "http://b-v2.default.svc.cluster.local:8080/",
			harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
	}
	rows := []row{
		// No DR tls: auto mTLS, mTLS only to the endpoint with a sidecar.
		{name: "auto", config: migrationConfig(""), calls: append([]callSpec{
			call("to-v1", "sleep", v1, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(sleepID)),
			call("to-v2", "sleep", v2, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
		}, legacy...)},
		// ISTIO_MUTUAL for the whole host: v2's plain app cannot answer TLS.
		{name: "ISTIO_MUTUAL", config: migrationConfig("  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}"), calls: []callSpec{
			call("to-v1", "sleep", v1, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(sleepID)),
			call("to-v2", "sleep", v2,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.TLS), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UF")),
		}},
		// DISABLE for the whole host: v1's STRICT sidecar refuses plaintext
		// (Envoy reports UC; see TestSidecarDestinationRules/DISABLE_vs_STRICT).
		{name: "DISABLE", config: migrationConfig("  trafficPolicy: {tls: {mode: DISABLE}}"), calls: []callSpec{
			call("to-v1", "sleep", v1,
				harness.ExpectResult(outcome.HTTP(503)), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone), harness.ExpectReason("UC")),
			call("to-v2", "sleep", v2, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
		}},
	}
	for i := range rows {
		rows[i].cite = cite
	}
	runRows(t, migrationWorkloads, rows)
}
