package translate

import (
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	cors "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
)

// DestinationRule loadBalancer, connectionPool and outlierDetection become
// cluster settings; portLevelSettings without tls replace them for their
// port, and a subset's policy overrides the fields it sets
// (pilot/pkg/networking/core/cluster_traffic_policy.go; pilot/pkg/model/destination_rule.go, MergeTrafficPolicy).
func TestTrafficPolicyTranslated(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool:
      tcp: {maxConnections: 7, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 3, maxRequestsPerConnection: 1, idleTimeout: 30s}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
    portLevelSettings:
    - port: {number: 9000}
      loadBalancer: {consistentHash: {ringHash: {minimumRingSize: 64}}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`, "a")
	c := findCluster(t, res, "outbound|8080||b.default.svc.cluster.local")
	if c.LbPolicy != cluster.Cluster_RANDOM {
		t.Errorf("lb = %v, want RANDOM", c.LbPolicy)
	}
	th := c.GetCircuitBreakers().GetThresholds()
	if len(th) != 1 || th[0].GetMaxConnections().GetValue() != 7 || th[0].GetMaxPendingRequests().GetValue() != 3 || th[0].GetMaxRequests().GetValue() != 4294967295 {
		t.Errorf("circuit breakers = %v", th)
	}
	if c.GetConnectTimeout().AsDuration() != 2*time.Second {
		t.Errorf("connect timeout = %v", c.GetConnectTimeout().AsDuration())
	}
	common := httpOptions(t, c).GetCommonHttpProtocolOptions()
	if common.GetIdleTimeout().AsDuration() != 30*time.Second || common.GetMaxRequestsPerConnection().GetValue() != 1 {
		t.Errorf("common http options = %v", common)
	}
	if httpOptions(t, c).GetExplicitHttpConfig().GetHttpProtocolOptions() == nil {
		t.Errorf("HTTP/1.1 upstream lost: %v", httpOptions(t, c))
	}
	od := c.GetOutlierDetection()
	if od.GetConsecutive_5Xx().GetValue() != 5 || od.GetEnforcingConsecutive_5Xx().GetValue() != 100 || od.GetEnforcingSuccessRate().GetValue() != 0 ||
		od.GetMaxEjectionPercent().GetValue() != 50 || od.GetBaseEjectionTime().AsDuration() != 30*time.Second {
		t.Errorf("outlier detection = %v", od)
	}
	if p := c.GetCommonLbConfig().GetHealthyPanicThreshold(); p == nil || p.GetValue() != 0 {
		t.Errorf("panic threshold = %v, want 0", p)
	}
	// Port-level settings replace everything for their port: ring hash, no pool.
	c = findCluster(t, res, "outbound|9000||b.default.svc.cluster.local")
	if c.LbPolicy != cluster.Cluster_RING_HASH || c.GetRingHashLbConfig().GetMinimumRingSize().GetValue() != 64 {
		t.Errorf("port 9000 lb = %v %v", c.LbPolicy, c.GetLbConfig())
	}
	if c.CircuitBreakers != nil || c.OutlierDetection != nil {
		t.Errorf("port 9000 inherited pool/outlier: %v %v", c.CircuitBreakers, c.OutlierDetection)
	}
	// The subset overrides the load balancer only.
	c = findCluster(t, res, "outbound|8080|v1|b.default.svc.cluster.local")
	if c.LbPolicy != cluster.Cluster_ROUND_ROBIN || c.GetCircuitBreakers().GetThresholds()[0].GetMaxConnections().GetValue() != 7 {
		t.Errorf("subset cluster lb = %v, breakers = %v", c.LbPolicy, c.CircuitBreakers)
	}
}

// VirtualService fault, corsPolicy, mirror, retries, redirect port and
// match fields become route settings (pilot/pkg/networking/core/route/route.go,
// TranslateRoute; route/retry/retry.go, ConvertPolicy).
func TestHTTPRouteFeaturesTranslated(t *testing.T) {
	res, _ := translate(t, "sidecar.yaml", `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b]
  http:
  - name: faulty
    match:
    - uri: {prefix: /f}
      queryParams: {q: {exact: "1"}}
      withoutHeaders: {x-skip: {exact: "yes"}}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 50}}
      abort: {httpStatus: 503, percentage: {value: 100}}
    corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}], allowMethods: [GET, POST], maxAge: 86400s}
    mirror: {host: b, subset: v2}
    mirrorPercentage: {value: 25}
    retries: {attempts: 3, retryOn: "5xx,503", backoff: 0.1s, retryIgnorePreviousHosts: false}
    route: [{destination: {host: b, subset: v1}}]
  - name: moved
    match: [{uri: {prefix: /old}, sourceNamespace: elsewhere}]
    redirect: {uri: /new}
  - name: moved-here
    redirect: {uri: /new, derivePort: FROM_REQUEST_PORT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec:
  host: b
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`, "a")
	var vh *route.VirtualHost
	for _, v := range findRoute(t, res, "8080").VirtualHosts {
		if v.Name == "b.default.svc.cluster.local:8080" {
			vh = v
		}
	}
	if vh == nil {
		t.Fatal("no virtual host for b")
	}
	// The sourceNamespace match of "moved" is for another namespace: dropped.
	equal(t, "routes", names(vh.Routes), []string{"faulty", "moved-here"})
	r := vh.Routes[0]
	if qp := r.Match.GetQueryParameters(); len(qp) != 1 || qp[0].Name != "q" || qp[0].GetStringMatch().GetExact() != "1" {
		t.Errorf("query params = %v", qp)
	}
	if h := r.Match.GetHeaders(); len(h) != 1 || h[0].Name != "x-skip" || !h[0].InvertMatch || !h[0].TreatMissingHeaderAsEmpty {
		t.Errorf("withoutHeaders = %v", h)
	}
	f := unmarshal(t, r.TypedPerFilterConfig[faultFilterName], &fault.HTTPFault{})
	if f.GetAbort().GetHttpStatus() != 503 || f.GetAbort().GetPercentage().GetNumerator() != 1000000 || f.GetDelay().GetFixedDelay().AsDuration() != time.Second {
		t.Errorf("fault = %v", f)
	}
	c := unmarshal(t, r.TypedPerFilterConfig[corsFilterName], &cors.CorsPolicy{})
	if c.GetAllowMethods() != "GET,POST" || c.GetMaxAge() != "86400" || c.GetAllowOriginStringMatch()[0].GetExact() != "https://a.example.com" {
		t.Errorf("cors = %v", c)
	}
	ra := r.GetRoute()
	if m := ra.GetRequestMirrorPolicies(); len(m) != 1 || m[0].Cluster != "outbound|8080|v2|b.default.svc.cluster.local" || m[0].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 250000 {
		t.Errorf("mirror = %v", m)
	}
	rp := ra.GetRetryPolicy()
	if rp.GetNumRetries().GetValue() != 3 || rp.GetRetryOn() != "5xx,retriable-status-codes" || len(rp.GetRetriableStatusCodes()) != 1 ||
		rp.GetRetryBackOff().GetBaseInterval().AsDuration() != 100*time.Millisecond || len(rp.GetRetryHostPredicate()) != 0 {
		t.Errorf("retry policy = %v", rp)
	}
	if hp := ra.GetHashPolicy(); len(hp) != 1 || hp[0].GetHeader().GetHeaderName() != "x-user" {
		t.Errorf("hash policy = %v", hp)
	}
	if got := vh.Routes[1].GetRedirect(); got.GetPortRedirect() != 8080 || got.GetPathRedirect() != "/new" {
		t.Errorf("derivePort redirect = %v", got)
	}
	// The outbound HCM carries the cors and fault filters before the router.
	h := chainHCM(t, findChain(t, findListener(t, res, OutboundListenerName(8080)), OutboundListenerName(8080)+"|http"))
	equal(t, "HTTP filters", names(h.HttpFilters), []string{alpnFilterName, corsFilterName, faultFilterName, "envoy.filters.http.router"})
}
