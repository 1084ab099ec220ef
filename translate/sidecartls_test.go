package translate

import (
	"strings"
	"testing"
)

// The egress-gateway pattern for HTTPS: a VirtualService bound to mesh and
// the egress Gateway sends the sidecar's TLS for api.example.org, by SNI, to
// the egress gateway, which passes it through to the external host
// (pilot/pkg/networking/core/tls.go, buildSidecarOutboundTLSFilterChainOpts;
// https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway/#egress-gateway-for-https-traffic).
const egressHTTPS = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: istio-egressgateway, namespace: istio-system, labels: {istio: egressgateway}}
spec: {gateway: true}
---
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: https, port: 443}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [api.example.org]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-api}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: api}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-api-through-egress-gateway}
spec:
  hosts: [api.example.org]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match: [{gateways: [mesh], port: 443, sniHosts: [api.example.org]}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: api, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443, sniHosts: [api.example.org]}]
    route: [{destination: {host: api.example.org, port: {number: 443}}, weight: 100}]
`

func TestSidecarTLSRoutes(t *testing.T) {
	res, _ := translate(t, "serviceentry.yaml", egressHTTPS, "sleep")
	l := findListener(t, res, OutboundListenerName(443))
	fc := findChain(t, l, "VirtualService default/direct-api-through-egress-gateway|tls[0]|api.example.org")
	equal(t, "server_names", fc.FilterChainMatch.ServerNames, []string{"api.example.org"})
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|443|api|istio-egressgateway.istio-system.svc.cluster.local" {
		t.Errorf("cluster = %q", got)
	}
	// The route replaces the host's own SNI chain.
	if n := chainNamesWithPrefix(l, "outbound|443||api.example.org"); len(n) != 0 {
		t.Errorf("default chain still there: %v", n)
	}
	if len(l.ListenerFilters) == 0 || !strings.Contains(l.ListenerFilters[0].Name, "tls_inspector") {
		t.Errorf("listener filters = %v", names(l.ListenerFilters))
	}
	// The gateway passes the same SNI through to the external host.
	res, _ = translate(t, "serviceentry.yaml", egressHTTPS, "istio-system/istio-egressgateway")
	gfc := findChain(t, findListener(t, res, OutboundListenerName(443)), "default/istio-egressgateway|tls|VirtualService default/direct-api-through-egress-gateway|api.example.org")
	if got := chainTCPProxy(t, gfc).GetCluster(); got != "outbound|443||api.example.org" {
		t.Errorf("gateway cluster = %q", got)
	}
}

// A tls match for another port or another gateway does not apply: the
// host keeps its default chain.
func TestSidecarTLSRouteNotApplying(t *testing.T) {
	extra := strings.Replace(egressHTTPS, "gateways: [mesh], port: 443", "gateways: [mesh], port: 8443", 1)
	res, _ := translate(t, "serviceentry.yaml", extra, "sleep")
	l := findListener(t, res, OutboundListenerName(443))
	if n := chainNamesWithPrefix(l, "VirtualService"); len(n) != 0 {
		t.Errorf("tls route applied on the wrong port: %v", n)
	}
	if got := chainTCPProxy(t, findChain(t, l, "outbound|443||api.example.org")).GetCluster(); got != "outbound|443||api.example.org" {
		t.Errorf("default chain cluster = %q", got)
	}
}
