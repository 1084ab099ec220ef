package translate

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	setfs "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
)

// Every route of an outbound HCM enables the per-request Istio ALPN with
// the list of its cluster's upstream protocol, as Istio's istio.alpn filter
// does (pilot/pkg/xds/filters/filters.go, Alpn), except routes to
// SIMPLE/MUTUAL clusters (pilot/pkg/networking/util/util.go,
// AddALPNOverrideToMetadata). Clusters keep Istio's TCP ALPN.
func TestALPNOverride(t *testing.T) {
	dr := func(tls string) string {
		return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy: {tls: ` + tls + `}
`
	}
	tests := []struct {
		name  string
		extra string
		port  uint32 // RDS name
		vhost string
		want  string // "": no override
	}{
		{"auto port, auto mTLS", "", 7070, "b.default.svc.cluster.local:7070", alpnByProtocol},
		{"auto port, ISTIO_MUTUAL", dr("{mode: ISTIO_MUTUAL}"), 7070, "b.default.svc.cluster.local:7070", alpnByProtocol},
		{"auto port, SIMPLE", dr("{mode: SIMPLE, insecureSkipVerify: true}"), 7070, "b.default.svc.cluster.local:7070", ""},
		{"http port, auto mTLS", "", 8080, "b.default.svc.cluster.local:8080", alpnHTTP11},
		{"http port, DISABLE", dr("{mode: DISABLE}"), 8080, "b.default.svc.cluster.local:8080", alpnHTTP11},
		{"http port, MUTUAL", dr("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}"), 8080, "b.default.svc.cluster.local:8080", ""},
		{"auto port, allow_any", "", 7070, "allow_any", alpnByProtocol},
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
			for _, v := range findRoute(t, res, OutboundRouteName(tt.port)).VirtualHosts {
				if v.Name == tt.vhost {
					vh = v
				}
			}
			if vh == nil {
				t.Fatalf("no virtual host %s", tt.vhost)
			}
			fcfg, ok := vh.Routes[0].TypedPerFilterConfig[alpnFilterName]
			if ok != (tt.want != "") {
				t.Fatalf("route enables %s = %v, want %q", alpnFilterName, ok, tt.want)
			}
			if ok {
				rf := unmarshal(t, fcfg, &route.FilterConfig{})
				cfg := unmarshal(t, rf.Config, &setfs.Config{})
				v := cfg.OnRequestHeaders[0]
				if v.GetObjectKey() != "envoy.network.application_protocols" || v.GetFormatString().GetTextFormatSource().GetInlineString() != tt.want {
					t.Errorf("filter state = %v, want %q", v, tt.want)
				}
			}
			if tt.extra != "" {
				return
			}
			// The cluster keeps the TCP form.
			c := findCluster(t, res, OutboundClusterName(tt.port, "", "b.default.svc.cluster.local"))
			ts := c.TransportSocket
			if len(c.TransportSocketMatches) > 0 {
				ts = c.TransportSocketMatches[0].TransportSocket
			}
			equal(t, "cluster ALPN", upstreamTLS(t, ts).CommonTlsContext.AlpnProtocols, alpnIstioTCP)
		})
	}
}
