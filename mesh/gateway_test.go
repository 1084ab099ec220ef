package mesh

import (
	"strings"
	"testing"
)

// Servers claiming one host and port: the older Gateway keeps it, the newer
// server is dropped with a warning (pilot/pkg/model/gateway.go
// mergeGateways; istioctl analyze IST0145).
func TestGatewayServerConflicts(t *testing.T) {
	gw := func(name, ts, servers string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: istio-system, creationTimestamp: '" + ts +
			"'}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n" + servers
	}
	https := func(host string) string {
		return "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [" + host + "]\n    tls: {mode: SIMPLE, credentialName: c}\n"
	}
	const http = "  - port: {number: 443, name: http, protocol: HTTP}\n    hosts: [b.example.com]\n"
	workload := "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: ingress, namespace: istio-system, labels: {istio: ingressgateway}}\nspec: {gateway: true}\n"
	for _, tc := range []struct {
		name, gws string
		kept      []string // gateway names of the kept servers, in order
		warning   string   // substring of the one warning, "" none
	}{
		{"duplicate TLS host: the older wins",
			gw("a-new", "2024-06-01T00:00:00Z", https("b.example.com")) + gw("z-old", "2024-01-01T00:00:00Z", https("b.example.com")),
			[]string{"z-old"}, "Gateway istio-system/a-new: spec.servers[0]: conflict with Gateway istio-system/z-old (port 443, hosts b.example.com)"},
		{"different hosts share the port",
			gw("a", "2024-01-01T00:00:00Z", https("b.example.com")) + gw("b", "2024-01-01T00:00:00Z", https("c.example.com")),
			[]string{"a", "b"}, ""},
		{"*/ and bare host are the same host",
			gw("a", "2024-01-01T00:00:00Z", https("'*/b.example.com'")) + gw("b", "2024-01-02T00:00:00Z", https("b.example.com")),
			[]string{"a"}, "IST0145"},
		{"TLS server after a plaintext one on its port",
			gw("a", "2024-01-01T00:00:00Z", http) + gw("b", "2024-01-02T00:00:00Z", https("c.example.com")),
			[]string{"a"}, "protocol HTTPS cannot share the port with the HTTP server of Gateway istio-system/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, workload+tc.gws)
			w, _ := m.Workload("istio-system/ingress")
			var kept []string
			for _, gs := range m.GatewayServers(w) {
				kept = append(kept, gs.Gateway.Name)
			}
			if strings.Join(kept, ",") != strings.Join(tc.kept, ",") {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
			switch {
			case tc.warning == "" && len(m.Warnings) > 0:
				t.Errorf("warnings %v, want none", m.Warnings)
			case tc.warning != "" && (len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0].String(), tc.warning)):
				t.Errorf("warnings %v, want one containing %q", m.Warnings, tc.warning)
			}
		})
	}
}
