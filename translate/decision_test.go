package translate

import (
	"testing"

	"github.com/meshtls/meshtls/mesh"
)

// Translation records which Istio resource decided each inbound port,
// gateway port and outbound cluster, for the trace.
func TestDecisions(t *testing.T) {
	m := loadFile(t, "../scenarios/testdata/17-cluster-shop-strict.yaml")
	decisions := func(ref string) map[string]mesh.Decision {
		w, ok := m.Workload(ref)
		if !ok {
			t.Fatalf("no workload %s", ref)
		}
		res, err := Translate(m, w, testEnv(t, m))
		if err != nil {
			t.Fatal(err)
		}
		return res.Decisions
	}
	for _, tc := range []struct {
		proxy, key, got, want string
	}{
		{"shop/reviews", mesh.InboundDecisionKey(9080), decisions("shop/reviews")[mesh.InboundDecisionKey(9080)].PeerAuthentication, "shop/default (namespace): STRICT"},
		{"shop/frontend", "ratings cluster", decisions("shop/frontend")["outbound|9080||ratings.shop.svc.cluster.local"].DestinationRule, "shop/ratings: ISTIO_MUTUAL"},
		{"shop/frontend", "reviews cluster", decisions("shop/frontend")["outbound|9080||reviews.shop.svc.cluster.local"].DestinationRule, "auto mTLS (no DestinationRule): ISTIO_MUTUAL to endpoints with a sidecar"},
		// The gateway Service maps 80 to 8080: the listener, and its decision, are on 8080.
		{"gateway", mesh.GatewayDecisionKey(8080), decisions("istio-system/istio-ingressgateway")[mesh.GatewayDecisionKey(8080)].Gateway, "shop/shop-gateway spec.servers[0] (HTTP, on targetPort 8080 of Service istio-system/istio-ingressgateway port 80)"},
		{"gateway", "frontend cluster", decisions("istio-system/istio-ingressgateway")["outbound|80||frontend.shop.svc.cluster.local"].VirtualService, "shop/frontend spec.http[0].route[0]"},
		{"shop/frontend passthrough", mesh.InboundDecisionKey(0), decisions("shop/frontend")[mesh.InboundDecisionKey(0)].PeerAuthentication, "shop/default (namespace): STRICT"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.proxy, tc.key, tc.got, tc.want)
		}
	}
	m = loadFile(t, "../scenarios/testdata/16-cluster-shop.yaml")
	if got := decisions("shop/reviews")[mesh.InboundDecisionKey(9080)].PeerAuthentication; got != "no PeerAuthentication (Istio's default): PERMISSIVE" {
		t.Errorf("without a PeerAuthentication: %q", got)
	}
}
