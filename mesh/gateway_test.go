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

// A Gateway server's port that is a port of a Service selecting the gateway
// listens on that port's targetPort; otherwise on itself
// (pilot/pkg/model/gateway.go resolvePorts; context.go SetServiceTargets).
func TestGatewayPort(t *testing.T) {
	const workload = "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: ingress, namespace: istio-system, labels: {istio: ingressgateway}}\nspec: {gateway: true}\n"
	svc := func(name, meta, ports string) string {
		return "---\napiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: istio-system" + meta + "}\nspec:\n  selector: {istio: ingressgateway}\n  ports: [" + ports + "]\n"
	}
	for _, tc := range []struct {
		name, svcs string
		port, want uint32
		svc        string // the Service that translated, "" none
	}{
		{"no Service: the server's port", "", 80, 80, ""},
		{"a Service port: its targetPort", svc("ingress", "", "{name: http2, port: 80, targetPort: 8080}"), 80, 8080, "ingress"},
		{"not a Service port: kept", svc("ingress", "", "{name: http2, port: 80, targetPort: 8080}"), 8080, 8080, ""},
		{"the port-translation opt-out label", svc("ingress", ", labels: {experimental.istio.io/disable-gateway-port-translation: 'true'}", "{name: http2, port: 80, targetPort: 8080}"), 80, 80, ""},
		{"the oldest Service decides",
			svc("a-new", ", creationTimestamp: '2024-06-01T00:00:00Z'", "{name: http, port: 80, targetPort: 8081}") +
				svc("z-old", ", creationTimestamp: '2024-01-01T00:00:00Z'", "{name: http, port: 80, targetPort: 8082}"), 80, 8082, "z-old"},
		{"same age: by hostname",
			svc("b", "", "{name: http, port: 80, targetPort: 8082}") + svc("a", "", "{name: http, port: 80, targetPort: 8081}"), 80, 8081, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, workload+tc.svcs)
			w, _ := m.Workload("istio-system/ingress")
			got, s := m.GatewayPort(w, tc.port)
			name := ""
			if s != nil {
				name = s.Name
			}
			if got != tc.want || name != tc.svc {
				t.Errorf("GatewayPort(%d) = %d (Service %q), want %d (Service %q)", tc.port, got, name, tc.want, tc.svc)
			}
		})
	}
	// Servers share a listener by the port they listen on: an HTTPS server
	// on 8080 meets the HTTP server whose port 80 the Service sends to
	// 8080, and is dropped as on one port (mergeGateways, resolved ports).
	m := mustParse(t, workload+svc("ingress", "", "{name: http2, port: 80, targetPort: 8080}")+
		"---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"+
		"  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [a.example.com]\n"+
		"  - port: {number: 8080, name: https, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: {mode: SIMPLE, credentialName: c}\n")
	w, _ := m.Workload("istio-system/ingress")
	if got := m.GatewayServers(w); len(got) != 1 || got[0].Server.GetPort().GetNumber() != 80 {
		t.Errorf("servers kept: %v, want only the HTTP server on 80", got)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0].String(), "port 8080: protocol HTTPS cannot share the port") {
		t.Errorf("warnings %v, want the HTTPS server dropped", m.Warnings)
	}
	// The other way round, the warning names both ports.
	m = mustParse(t, workload+svc("ingress", "", "{name: http2, port: 80, targetPort: 8080}")+
		"---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"+
		"  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [a.example.com]\n"+
		"  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: {mode: SIMPLE, credentialName: c}\n")
	const want = "port 80, listened on as 8080 (targetPort of Service istio-system/ingress): protocol HTTPS cannot share the port with the HTTP server"
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0].String(), want) {
		t.Errorf("warnings %v, want one containing %q", m.Warnings, want)
	}
}
