package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/outcome"
)

// Sidecar rules beyond the matrix: DestinationRule modes against each server
// mode, PeerAuthentication precedence (mesh < namespace < workload < port),
// and the mTLS migration of a service with a sidecar subset and a plain one.

const rulesWorkloads = `
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
# The server's app terminates TLS itself on 8443 (certificate from the app CA).
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
			checks: []check{
				{name: "http", from: "client", to: serverHTTP, want: expect(outcome.HTTP(503), w(outcome.Plaintext), outcome.PeerNone, "UC")},
				{name: "tcp", from: "client", to: serverTCP, want: expect(outcome.Reset, w(outcome.Plaintext), outcome.PeerNone, "")},
			},
		},
		{
			// ISTIO_MUTUAL toward a server that cannot terminate it: a pod
			// without sidecar, or a sidecar whose PeerAuthentication is DISABLE
			// (TLS then reaches the plain app as bytes).
			name:   "ISTIO_MUTUAL_vs_plain",
			cite:   "tests/integration/security/reachability_test.go; pilot/pkg/networking/core/filterchain_options.go",
			config: meshDR("ISTIO_MUTUAL") + serverPA("DISABLE"),
			checks: []check{
				{name: "naked-server", from: "client", to: nakedHTTP, want: expect(outcome.HTTP(503), w(outcome.TLS), outcome.PeerNone, "UF")},
				{name: "sidecar-DISABLE", from: "client", to: serverHTTP, want: expect(outcome.HTTP(503), w(outcome.TLS), outcome.PeerNone, "UF")},
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
			checks: []check{
				{name: "tls-port", from: "client", to: serverTLS, want: expect(outcome.OK, w(outcome.TLS), outcome.PeerNone, "")},
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
			checks: []check{
				{name: "tls-port", from: "client", to: serverTLS, want: expect(outcome.Reset, w(outcome.TLS), outcome.PeerNone, "CERTIFICATE_VERIFY_FAILED")},
				{name: "http-port", from: "client", to: serverHTTP, want: expect(outcome.HTTP(503), w(outcome.TLS), outcome.PeerNone, "CERTIFICATE_VERIFY_FAILED")},
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
			checks: []check{
				{name: "http-port", from: "client", to: serverHTTP, want: expect(outcome.HTTP(503), w(outcome.TLS), "", "UF")},
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
			checks: []check{
				{name: "tls-port", from: "client", to: serverTLS, want: expect(outcome.OK, w(outcome.MTLS), "CN=meshtls-client,O=meshtls", "")},
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
			checks: []check{
				{name: "tls-port", from: "client", to: serverTLS, want: expect(outcome.Reset, w(outcome.TLS), outcome.PeerNone, "CERTIFICATE_VERIFY_FAILED")},
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
			checks: []check{
				{name: "http", from: "client", to: serverHTTP, want: expect(outcome.OK, w(outcome.MTLS), clientID, "")},
				{name: "fault-abort", from: "client", to: serverHTTP + "abort", want: expect(outcome.HTTP(418), nil, "", "FI")},
				{name: "tcp-port-level", from: "client", to: serverTCP, want: expect(outcome.OK, w(outcome.MTLS), clientID, "")},
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
			checks: []check{
				{name: "tcp-rerouted", from: "client", to: serverTCP, want: expect("ok", w("plaintext"), "none", "")},
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
	plainOK := expect(outcome.OK, w(outcome.Plaintext), outcome.PeerNone, "")
	refused := expect(outcome.Reset, w(outcome.Plaintext), outcome.PeerNone, "")
	mtlsOK := expect(outcome.OK, w(outcome.MTLS), clientID, "")
	rows := []row{
		{name: "mesh_STRICT_workload_PERMISSIVE", config: meshPA("STRICT") + serverPA("PERMISSIVE"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: plainOK},
			{name: "sidecar/http", from: "client", to: serverHTTP, want: mtlsOK},
		}},
		{name: "mesh_PERMISSIVE_workload_STRICT", config: meshPA("PERMISSIVE") + serverPA("STRICT"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: refused},
			{name: "sidecar/http", from: "client", to: serverHTTP, want: mtlsOK},
		}},
		{name: "mesh_STRICT_namespace_PERMISSIVE", config: meshPA("STRICT") + nsPA("PERMISSIVE"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: plainOK},
		}},
		{name: "namespace_STRICT_workload_UNSET", config: nsPA("STRICT") + serverPA("UNSET"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: refused},
		}},
		{name: "workload_STRICT_port_PERMISSIVE", config: serverPA("STRICT", "9000: {mode: PERMISSIVE}"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: refused},
			{name: "naked/tcp", from: "naked-client", to: serverTCP, want: plainOK},
		}},
		{name: "workload_PERMISSIVE_port_STRICT", config: serverPA("PERMISSIVE", "8080: {mode: STRICT}"), checks: []check{
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: refused},
			{name: "naked/tcp", from: "naked-client", to: serverTCP, want: plainOK},
		}},
		// Port DISABLE under a STRICT workload: auto mTLS reads the port's
		// mode and sends plaintext there, mTLS elsewhere
		// (pilot/pkg/xds/endpoints/mtls_checker.go).
		{name: "workload_STRICT_port_DISABLE", config: serverPA("STRICT", "8080: {mode: DISABLE}"), checks: []check{
			{name: "sidecar/http", from: "client", to: serverHTTP, want: plainOK},
			{name: "sidecar/tcp", from: "client", to: serverTCP, want: mtlsOK},
			{name: "naked/http", from: "naked-client", to: serverHTTP, want: plainOK},
			{name: "naked/tcp", from: "naked-client", to: serverTCP, want: refused},
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
	legacy := []check{
		{name: "legacy-to-v1", from: "legacy/sleep", to: "http://b-v1.default.svc.cluster.local:8080/", want: expect(outcome.Reset, w(outcome.Plaintext), outcome.PeerNone, "")},
		{name: "legacy-to-v2", from: "legacy/sleep", to: "http://b-v2.default.svc.cluster.local:8080/", want: expect(outcome.OK, w(outcome.Plaintext), outcome.PeerNone, "")},
	}
	rows := []row{
		// No DR tls: auto mTLS, mTLS only to the endpoint with a sidecar.
		{name: "auto", config: migrationConfig(""), checks: append([]check{
			{name: "to-v1", from: "sleep", to: v1, want: expect(outcome.OK, w(outcome.MTLS), sleepID, "")},
			{name: "to-v2", from: "sleep", to: v2, want: expect(outcome.OK, w(outcome.Plaintext), outcome.PeerNone, "")},
		}, legacy...)},
		// ISTIO_MUTUAL for the whole host: v2's plain app cannot answer TLS.
		{name: "ISTIO_MUTUAL", config: migrationConfig("  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}"), checks: []check{
			{name: "to-v1", from: "sleep", to: v1, want: expect(outcome.OK, w(outcome.MTLS), sleepID, "")},
			{name: "to-v2", from: "sleep", to: v2, want: expect(outcome.HTTP(503), w(outcome.TLS), outcome.PeerNone, "UF")},
		}},
		// DISABLE for the whole host: v1's STRICT sidecar refuses plaintext
		// (Envoy reports UC; see TestSidecarDestinationRules/DISABLE_vs_STRICT).
		{name: "DISABLE", config: migrationConfig("  trafficPolicy: {tls: {mode: DISABLE}}"), checks: []check{
			{name: "to-v1", from: "sleep", to: v1, want: expect(outcome.HTTP(503), w(outcome.Plaintext), outcome.PeerNone, "UC")},
			{name: "to-v2", from: "sleep", to: v2, want: expect(outcome.OK, w(outcome.Plaintext), outcome.PeerNone, "")},
		}},
	}
	for i := range rows {
		rows[i].cite = cite
	}
	runRows(t, migrationWorkloads, rows)
}
