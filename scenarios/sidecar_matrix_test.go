package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/mesh"
)

// The sidecar outcome matrix: Istio's own reachability test, replayed on
// real proxies. Each row is one mesh-wide PeerAuthentication (root namespace
// istio-system) and one DestinationRule for host "*" in istio-system; every
// row calls {sidecar, naked} clients x {sidecar, naked} servers on an HTTP
// port and a TCP port.
// Source: tests/integration/security/reachability_test.go and
// tests/integration/security/testdata/reachability/*.tmpl (istio/istio);
// the table in ISTIO-BEHAVIOUR.md "The sidecar outcome matrix".

const matrixWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: naked-client}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: naked-server}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
`

const clientID = "spiffe://cluster.local/ns/default/sa/client"

// meshPA is a mesh-wide PeerAuthentication (root namespace, no selector).
func meshPA(mode string) string {
	return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: ` + mode + `}
---
`
}

// meshDR is a DestinationRule for every host, as the reachability test
// installs it in the root namespace.
func meshDR(mode string) string {
	return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: default, namespace: istio-system}
spec:
  host: "*"
  trafficPolicy:
    tls: {mode: ` + mode + `}
---
`
}

// matrixRule says, for a table row, when the call uses mTLS and when it
// succeeds, from whether the client and the server have a sidecar.
type matrixRule struct {
	mtls, ok func(clientSidecar, serverSidecar bool) bool
}

var (
	neitherNaked  = func(c, s bool) bool { return c && s }
	serverSidecar = func(c, s bool) bool { return s }
	clientSidecar = func(c, s bool) bool { return c }
	never         = func(c, s bool) bool { return false }
	always        = func(c, s bool) bool { return true }
)

// matrixChecks expands a rule into the 8 calls of a row. A naked client and a
// naked server never meet a proxy: that call is plaintext and succeeds
// whatever the config says (the reachability test's own exclusion).
//
// The two ways a call fails, as Istio documents them:
//   - a naked client sends plaintext to a STRICT sidecar: no inbound filter
//     chain matches, the connection is reset (curl exit 56)
//     (pilot/pkg/networking/core/filterchain_options.go; ISTIO-BEHAVIOUR.md);
//   - a client sidecar originates ISTIO_MUTUAL to a server with no sidecar:
//     the app answers the ClientHello in plaintext and the client's proxy
//     fails the handshake (HTTP: 503 with flag UF; TCP: the connection is
//     closed) (pilot/pkg/networking/core/cluster_tls.go).
func matrixChecks(rule matrixRule) []check {
	var out []check
	for _, c := range []bool{true, false} {
		for _, s := range []bool{true, false} {
			from, to := "client", "server"
			cname, sname := "sidecar", "sidecar"
			if !c {
				from, cname = "naked-client", "naked"
			}
			if !s {
				to, sname = "naked-server", "naked"
			}
			for _, port := range []struct {
				name, url string
			}{
				{"http", "http://" + to + ".default.svc.cluster.local:8080/"},
				{"tcp", "tcp://" + to + ".default.svc.cluster.local:9000"},
			} {
				var want mesh.Expect
				switch {
				case !c && !s:
					want = expect("ok", w("plaintext"), "none", "")
				case rule.ok(c, s) && rule.mtls(c, s):
					want = expect("ok", w("mtls"), clientID, "")
				case rule.ok(c, s):
					want = expect("ok", w("plaintext"), "none", "")
				case !c:
					want = expect("reset", w("plaintext"), "none", "")
				case port.name == "http":
					want = expect("http-503", w("tls"), "none", "UF")
				default:
					want = expect("reset", w("tls"), "none", "")
				}
				out = append(out, check{
					name: cname + "-to-" + sname + "/" + port.name,
					from: from, to: port.url, want: want,
				})
			}
		}
	}
	return out
}

func TestSidecarMatrix(t *testing.T) {
	const cite = "tests/integration/security/reachability_test.go, tests/integration/security/testdata/reachability/*.tmpl"
	rows := []row{
		{name: "STRICT_ISTIO_MUTUAL", config: meshPA("STRICT") + meshDR("ISTIO_MUTUAL"),
			checks: matrixChecks(matrixRule{mtls: neitherNaked, ok: neitherNaked})},
		{name: "PERMISSIVE_ISTIO_MUTUAL", config: meshPA("PERMISSIVE") + meshDR("ISTIO_MUTUAL"),
			checks: matrixChecks(matrixRule{mtls: neitherNaked, ok: serverSidecar})},
		{name: "DISABLE_DISABLE", config: meshPA("DISABLE") + meshDR("DISABLE"),
			checks: matrixChecks(matrixRule{mtls: never, ok: always})},
		{name: "PERMISSIVE_DISABLE", config: meshPA("PERMISSIVE") + meshDR("DISABLE"),
			checks: matrixChecks(matrixRule{mtls: never, ok: always})},
		// No DR tls: auto mTLS sends mTLS only to endpoints with a sidecar
		// (pilot/pkg/xds/endpoints/mtls_checker.go).
		{name: "STRICT_auto", config: meshPA("STRICT"),
			checks: matrixChecks(matrixRule{mtls: neitherNaked, ok: clientSidecar})},
		// Mesh-wide DISABLE: auto mTLS infers plaintext for every service
		// (pilot/pkg/model/push_context.go BestEffortInferServiceMTLSMode).
		{name: "DISABLE_auto", config: meshPA("DISABLE"),
			checks: matrixChecks(matrixRule{mtls: never, ok: always})},
		// No PeerAuthentication: servers are PERMISSIVE.
		{name: "unset_ISTIO_MUTUAL", config: meshDR("ISTIO_MUTUAL"),
			checks: matrixChecks(matrixRule{mtls: neitherNaked, ok: serverSidecar})},
		// A workload policy STRICT whose every port is DISABLE: the ports
		// win, and auto mTLS reads the endpoint's port-level mode, so nothing
		// is mTLS and everything works (pilot/pkg/xds/endpoints/mtls_checker.go).
		{name: "workload_STRICT_ports_DISABLE_auto", config: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
    9000: {mode: DISABLE}
`, checks: matrixChecks(matrixRule{mtls: never, ok: always})},
	}
	for i := range rows {
		rows[i].cite = cite
	}
	runRows(t, matrixWorkloads, rows)
}
