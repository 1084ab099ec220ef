package translate

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
)

// HTTP on an auto-detected port: the cluster keeps Istio's TCP ALPN (its
// tcp chain), and the route from the HCM enables the per-request
// istio-http/istio-h2 override, as Istio's istio.alpn filter does
// (pilot/pkg/xds/filters/filters.go, Alpn). Explicit-protocol and
// SIMPLE/MUTUAL clusters are left alone.
func TestAutoPortALPNOverride(t *testing.T) {
	drSimple := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}
`
	drIstio := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`
	tests := []struct {
		name     string
		extra    string
		route    string // RDS name
		vhost    string
		override bool
	}{
		{"auto port, auto mTLS", "", "7070", "b.default.svc.cluster.local:7070", true},
		{"auto port, ISTIO_MUTUAL", drIstio, "7070", "b.default.svc.cluster.local:7070", true},
		{"auto port, SIMPLE", drSimple, "7070", "b.default.svc.cluster.local:7070", false},
		{"http port", "", "8080", "b.default.svc.cluster.local:8080", false},
		{"auto port, allow_any", "", "7070", "allow_any", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", tt.extra, "a")
			// The HCM carries the filter, disabled, first; the router last.
			fc := findChain(t, findListener(t, res, OutboundListenerName(7070)), "outbound|7070||b.default.svc.cluster.local|http")
			h := chainHCM(t, fc)
			if n := len(h.HttpFilters); n < 2 || h.HttpFilters[0].Name != alpnFilterName || !h.HttpFilters[0].Disabled || h.HttpFilters[n-1].Name != "envoy.filters.http.router" {
				t.Fatalf("HCM filters = %v, want disabled %s first, router last", names(h.HttpFilters), alpnFilterName)
			}
			var vh *route.VirtualHost
			for _, v := range findRoute(t, res, tt.route).VirtualHosts {
				if v.Name == tt.vhost {
					vh = v
				}
			}
			if vh == nil {
				t.Fatalf("no virtual host %s", tt.vhost)
			}
			fcfg, ok := vh.Routes[0].TypedPerFilterConfig[alpnFilterName]
			if ok != tt.override {
				t.Fatalf("route enables %s = %v, want %v", alpnFilterName, ok, tt.override)
			}
			if !ok {
				return
			}
			rf := unmarshal(t, fcfg, &route.FilterConfig{})
			cfg := unmarshal(t, rf.Config, &setfs.Config{})
			v := cfg.OnRequestHeaders[0]
			if v.GetObjectKey() != "envoy.network.application_protocols" || v.GetFormatString().GetTextFormatSource().GetInlineString() != alpnByProtocol {
				t.Errorf("filter state = %v", v)
			}
			// The tcp chain's cluster keeps the TCP form.
			c := findCluster(t, res, "outbound|7070||b.default.svc.cluster.local")
			ts := c.TransportSocket
			if len(c.TransportSocketMatches) > 0 {
				ts = c.TransportSocketMatches[0].TransportSocket
			}
			equal(t, "cluster ALPN", upstreamTLS(t, ts).CommonTlsContext.AlpnProtocols, alpnIstioTCP)
		})
	}
}
