//go:build ignore

// gen_matrix writes bench/matrix/*.yaml: the 8 rows of Istio's sidecar
// outcome matrix (ISTIO-BEHAVIOUR.md), one bundle per row, same workloads in
// every file so that `meshtls run bench/matrix` starts the pods once.
//
//	go run gen_matrix.go   (from bench/)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const cite = `# Source: tests/integration/security/reachability_test.go and
#   tests/integration/security/testdata/reachability/*.tmpl (istio/istio);
#   /work/shared/ISTIO-BEHAVIOUR.md "The sidecar outcome matrix".
# Failures, as Istio documents them: a naked client's plaintext to a STRICT
#   sidecar matches no inbound filter chain and is reset
#   (pilot/pkg/networking/core/filterchain_options.go); a client sidecar
#   originating ISTIO_MUTUAL to a server without sidecar fails the handshake:
#   HTTP 503 flag UF, TCP closed (pilot/pkg/networking/core/cluster_tls.go).
`

const workloads = `---
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

func meshPA(mode string) string {
	return `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: ` + mode + `}
`
}

func meshDR(mode string) string {
	return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: default, namespace: istio-system}
spec:
  host: "*"
  trafficPolicy:
    tls: {mode: ` + mode + `}
`
}

type pred func(c, s bool) bool

var (
	neitherNaked  pred = func(c, s bool) bool { return c && s }
	serverSidecar pred = func(c, s bool) bool { return s }
	clientSidecar pred = func(c, s bool) bool { return c }
	never         pred = func(c, s bool) bool { return false }
	always        pred = func(c, s bool) bool { return true }
)

type row struct {
	file, title, config string
	mtls, ok            pred
}

func checks(r row) string {
	var b strings.Builder
	for _, c := range []bool{true, false} {
		for _, s := range []bool{true, false} {
			from, to, cn, sn := "client", "server", "sidecar", "sidecar"
			if !c {
				from, cn = "naked-client", "naked"
			}
			if !s {
				to, sn = "naked-server", "naked"
			}
			for _, port := range []struct{ name, url string }{
				{"http", "http://" + to + ".default.svc.cluster.local:8080/"},
				{"tcp", "tcp://" + to + ".default.svc.cluster.local:9000"},
			} {
				var exp string
				switch {
				case !c && !s: // no proxy on the path: config cannot matter
					exp = "{result: ok, wire: [plaintext], peer: none}"
				case r.ok(c, s) && r.mtls(c, s):
					exp = "{result: ok, wire: [mtls], peer: spiffe://cluster.local/ns/default/sa/client}"
				case r.ok(c, s):
					exp = "{result: ok, wire: [plaintext], peer: none}"
				case !c:
					exp = "{result: reset, wire: [plaintext], peer: none}"
				case port.name == "http":
					exp = "{result: http-503, wire: [tls], peer: none, reason: UF}"
				default:
					exp = "{result: reset, wire: [tls], peer: none}"
				}
				fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: %s-to-%s-%s}\nspec:\n  from: %s\n  to: %s\n  expect: %s\n",
					cn, sn, port.name, from, port.url, exp)
			}
		}
	}
	return b.String()
}

func main() {
	rows := []row{
		{"1-strict-istio-mutual", "PeerAuthentication STRICT, DR ISTIO_MUTUAL: mTLS and success when neither side is naked.",
			meshPA("STRICT") + meshDR("ISTIO_MUTUAL"), neitherNaked, neitherNaked},
		{"2-permissive-istio-mutual", "PeerAuthentication PERMISSIVE, DR ISTIO_MUTUAL: mTLS when neither side is naked; success when the server is not naked.",
			meshPA("PERMISSIVE") + meshDR("ISTIO_MUTUAL"), neitherNaked, serverSidecar},
		{"3-disable-disable", "PeerAuthentication DISABLE, DR DISABLE: never mTLS, always succeeds.",
			meshPA("DISABLE") + meshDR("DISABLE"), never, always},
		{"4-permissive-disable", "PeerAuthentication PERMISSIVE, DR DISABLE: never mTLS, always succeeds.",
			meshPA("PERMISSIVE") + meshDR("DISABLE"), never, always},
		{"5-strict-auto", "PeerAuthentication STRICT, no DR (auto mTLS: mTLS only to endpoints with a sidecar,\n# pilot/pkg/xds/endpoints/mtls_checker.go): mTLS when neither side is naked; success when the client is not naked.",
			meshPA("STRICT"), neitherNaked, clientSidecar},
		{"6-disable-auto", "PeerAuthentication DISABLE, no DR (auto mTLS infers plaintext,\n# pilot/pkg/model/push_context.go BestEffortInferServiceMTLSMode): never mTLS, always succeeds.",
			meshPA("DISABLE"), never, always},
		{"7-unset-istio-mutual", "No PeerAuthentication (PERMISSIVE), DR ISTIO_MUTUAL: mTLS when neither side is naked; success when the server is not naked.",
			meshDR("ISTIO_MUTUAL"), neitherNaked, serverSidecar},
		{"8-workload-strict-ports-disable", "Workload PeerAuthentication STRICT with every port DISABLE, no DR: ports win, auto mTLS\n# reads the endpoint's port-level mode (pilot/pkg/xds/endpoints/mtls_checker.go): never mTLS, always succeeds.",
			`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
    9000: {mode: DISABLE}
`, never, always},
	}
	for _, r := range rows {
		body := "# Sidecar outcome matrix, row " + r.file[:1] + ": " + r.title + "\n" + cite +
			"# Generated by bench/gen_matrix.go; clients {client, naked-client} x servers {server, naked-server} x ports {http 8080, tcp 9000}.\n" +
			workloads + r.config + checks(r)
		if err := os.WriteFile(filepath.Join("matrix", r.file+".yaml"), []byte(body), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
