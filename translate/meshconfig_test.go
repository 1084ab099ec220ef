package translate

import "testing"

const registryOnly = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
`

// outboundTrafficPolicy REGISTRY_ONLY sends what no service claims to
// BlackHoleCluster (virtualOutbound's catch-all, each port listener's
// default chain) and answers unknown HTTP hosts 502 from block_all;
// ALLOW_ANY passes them through (listener_builder.go,
// buildOutboundCatchAllNetworkFiltersOnly; httproute.go, buildCatchAllVirtualHost).
func TestOutboundTrafficPolicy(t *testing.T) {
	for _, tt := range []struct {
		extra, cluster, vhost string
	}{
		{"", PassthroughCluster, "allow_any"},
		{registryOnly, BlackHoleCluster, "block_all"},
	} {
		t.Run(tt.vhost, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", tt.extra, "a")
			vo := findListener(t, res, VirtualOutboundListener)
			if got := chainTCPProxy(t, vo.GetFilterChains()[0]).GetCluster(); got != tt.cluster {
				t.Errorf("virtualOutbound catch-all to %s, want %s", got, tt.cluster)
			}
			l := findListener(t, res, OutboundListenerName(9000))
			if got := chainTCPProxy(t, l.GetDefaultFilterChain()).GetCluster(); got != tt.cluster {
				t.Errorf("%s default chain to %s, want %s", l.GetName(), got, tt.cluster)
			}
			rc := findRoute(t, res, OutboundRouteName(8080))
			last := rc.GetVirtualHosts()[len(rc.GetVirtualHosts())-1]
			if last.GetName() != tt.vhost || last.GetDomains()[0] != "*" {
				t.Fatalf("catch-all virtual host %s %v, want %s", last.GetName(), last.GetDomains(), tt.vhost)
			}
			r := last.GetRoutes()[0]
			if tt.vhost == "block_all" {
				if r.GetDirectResponse().GetStatus() != 502 {
					t.Errorf("block_all answers %v, want 502", r.GetAction())
				}
			} else if r.GetRoute().GetCluster() != PassthroughCluster {
				t.Errorf("allow_any routes %v", r.GetAction())
			}
		})
	}
}
