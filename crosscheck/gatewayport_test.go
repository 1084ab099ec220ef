package crosscheck

import (
	"path/filepath"
	"strings"
	"testing"
)

// The port a gateway listens on agrees with istiod's in the corners the
// shipped bundles do not reach: two Services with the port (the older
// decides, whatever their names), the label that turns translation off, a
// server port no Service has (pilot/pkg/model/gateway.go resolvePorts).
func TestGatewayPortMatchesIstiod(t *testing.T) {
	oracle := oracleForTest(t)
	const base = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: ingress, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {gateway: true}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 81, name: http-other, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
`
	svc := func(name, meta, target string) string {
		return "---\napiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: istio-system" + meta +
			"}\nspec:\n  selector: {istio: ingressgateway}\n  ports: [{name: http, port: 80, targetPort: " + target + "}]\n"
	}
	dir := t.TempDir()
	bundles := map[string]string{
		// a-new is first by name but younger: z-old's 8082 wins.
		"older-service.yaml": base + svc("a-new", ", creationTimestamp: '2024-06-01T00:00:00Z'", "8081") +
			svc("z-old", ", creationTimestamp: '2024-01-01T00:00:00Z'", "8082"),
		"opt-out-label.yaml": base + svc("ingress", ", labels: {experimental.istio.io/disable-gateway-port-translation: 'true'}", "8080"),
	}
	diffs := diffBundles(t, oracle, dir, bundles)
	for _, d := range diffs {
		if d.Proxy == "istio-system/ingress" && (d.Behaviour || strings.HasPrefix(d.Key, "listener ")) {
			t.Errorf("%s", d)
		}
	}
	// meshtls's side, which the comparison above found equal to istiod's.
	for name, want := range map[string]uint32{"older-service.yaml": 8082, "opt-out-label.yaml": 80} {
		b, err := LoadBundle(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := b.Mesh.Workload("istio-system/ingress")
		if got, _ := b.Mesh.GatewayPort(w, 80); got != want {
			t.Errorf("%s: port 80 listens on %d, want %d", name, got, want)
		}
		if got, _ := b.Mesh.GatewayPort(w, 81); got != 81 {
			t.Errorf("%s: port 81 (no Service has it) listens on %d", name, got)
		}
	}
}
