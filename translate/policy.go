package translate

import (
	"math"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	envoytype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/mesh"
)

// The DestinationRule fields besides tls, translated as Istio does
// (pilot/pkg/networking/core/cluster_traffic_policy.go: applyLoadBalancer,
// applyConnectionPool, applyRetryBudget, applyOutlierDetection,
// applyTCPKeepalive). Fields that could change TLS or reachability and are
// not modelled are refused in checkDestinationRule; fields that cannot and
// are not translated are accepted with a notice (mesh/notice.go).

// applyTrafficPolicy sets tp's load balancer, connection pool, retry budget
// and outlier detection on c. httpOpts are the cluster's HTTP protocol
// options (nil for TCP-class clusters) and are updated in place; the
// returned value is non-nil when the pool adds HTTP options to a cluster
// that had none.
func applyTrafficPolicy(c *cluster.Cluster, httpOpts *httpopts.HttpProtocolOptions, tp *networkingapi.TrafficPolicy) *httpopts.HttpProtocolOptions {
	if tp == nil {
		return httpOpts
	}
	applyLoadBalancer(c, tp.GetLoadBalancer())
	httpOpts = applyConnectionPool(c, httpOpts, tp.GetConnectionPool(), tp.GetRetryBudget())
	applyOutlierDetection(c, tp.GetOutlierDetection())
	return httpOpts
}

// applyLoadBalancer: simple policies, slow start and consistent hashing
// (applyLoadBalancer, ApplyRingHashLoadBalancer, setWarmup). An unset
// simple policy in a loadBalancer block is Istio's default, LEAST_REQUEST.
// PASSTHROUGH is refused before we get here (it changes where calls go).
func applyLoadBalancer(c *cluster.Cluster, lb *networkingapi.LoadBalancerSettings) {
	if lb == nil || c.GetType() == cluster.Cluster_ORIGINAL_DST {
		return
	}
	switch lb.GetSimple() {
	case networkingapi.LoadBalancerSettings_RANDOM:
		c.LbPolicy = cluster.Cluster_RANDOM
	case networkingapi.LoadBalancerSettings_ROUND_ROBIN:
		c.LbPolicy = cluster.Cluster_ROUND_ROBIN
		if ss := slowStart(lb); ss != nil {
			c.LbConfig = &cluster.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &cluster.Cluster_RoundRobinLbConfig{SlowStartConfig: ss}}
		}
	default: // LEAST_REQUEST, LEAST_CONN (deprecated alias), unset
		c.LbPolicy = cluster.Cluster_LEAST_REQUEST
		if ss := slowStart(lb); ss != nil {
			c.LbConfig = &cluster.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &cluster.Cluster_LeastRequestLbConfig{SlowStartConfig: ss}}
		}
	}
	ch := lb.GetConsistentHash()
	if ch == nil {
		return
	}
	switch {
	case ch.GetMaglev() != nil:
		c.LbPolicy = cluster.Cluster_MAGLEV
		c.LbConfig = nil
		if n := ch.GetMaglev().GetTableSize(); n != 0 {
			c.LbConfig = &cluster.Cluster_MaglevLbConfig_{MaglevLbConfig: &cluster.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(n)}}
		}
	case ch.GetRingHash() != nil:
		c.LbPolicy = cluster.Cluster_RING_HASH
		c.LbConfig = nil
		if n := ch.GetRingHash().GetMinimumRingSize(); n != 0 {
			c.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(n)}}
		}
	default:
		// The deprecated minimumRingSize (default 1024, Envoy's).
		n := uint64(1024)
		//lint:ignore SA1019 Istio still honours the deprecated minimumRingSize
		if v := ch.GetMinimumRingSize(); v != 0 {
			n = v
		}
		c.LbPolicy = cluster.Cluster_RING_HASH
		c.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(n)}}
	}
}

// slowStart: warmup (aggression 1 and 10% minimum weight by default), or
// the deprecated warmupDurationSecs (setWarmup, setSlowStartConfig).
func slowStart(lb *networkingapi.LoadBalancerSettings) *cluster.Cluster_SlowStartConfig {
	if w := lb.GetWarmup(); w != nil {
		aggression, minPct := 1.0, 10.0
		if a := w.GetAggression(); a != nil {
			aggression = a.GetValue()
		}
		if m := w.GetMinimumPercent(); m != nil {
			minPct = m.GetValue()
		}
		return &cluster.Cluster_SlowStartConfig{
			SlowStartWindow:  w.GetDuration(),
			Aggression:       &core.RuntimeDouble{DefaultValue: aggression, RuntimeKey: "("},
			MinWeightPercent: &envoytype.Percent{Value: minPct},
		}
	}
	if d := lb.GetWarmupDurationSecs(); d != nil {
		return &cluster.Cluster_SlowStartConfig{SlowStartWindow: d}
	}
	return nil
}

// applyConnectionPool: circuit-breaker thresholds (Istio's defaults are
// unlimited), connect timeout, TCP keepalive and HTTP connection options
// (applyConnectionPool, getDefaultCircuitBreakerThresholds, applyRetryBudget).
// h2UpgradePolicy UPGRADE and useClientProtocol change the upstream protocol
// and are refused in checkDestinationRule.
func applyConnectionPool(c *cluster.Cluster, httpOpts *httpopts.HttpProtocolOptions, cp *networkingapi.ConnectionPoolSettings, budget *networkingapi.TrafficPolicy_RetryBudget) *httpopts.HttpProtocolOptions {
	if cp == nil {
		return httpOpts
	}
	th := &cluster.CircuitBreakers_Thresholds{
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		TrackRemaining:     true,
	}
	if budget != nil {
		pct := 20.0
		if budget.GetPercent() != nil {
			pct = budget.GetPercent().GetValue()
		}
		conc := uint32(3)
		if budget.GetMinRetryConcurrency() > 0 {
			conc = budget.GetMinRetryConcurrency()
		}
		th.RetryBudget = &cluster.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &envoytype.Percent{Value: pct},
			BudgetInterval:      budget.GetBudgetInterval(),
			MinRetryConcurrency: wrapperspb.UInt32(conc),
		}
	}
	h, t := cp.GetHttp(), cp.GetTcp()
	if n := h.GetHttp2MaxRequests(); n > 0 {
		th.MaxRequests = wrapperspb.UInt32(uint32(n))
	}
	if n := h.GetHttp1MaxPendingRequests(); n > 0 {
		th.MaxPendingRequests = wrapperspb.UInt32(uint32(n))
	}
	if n := h.GetMaxRetries(); n > 0 {
		th.MaxRetries = wrapperspb.UInt32(uint32(n))
	}
	if t.GetConnectTimeout() != nil {
		c.ConnectTimeout = t.GetConnectTimeout()
	}
	if n := t.GetMaxConnections(); n > 0 {
		th.MaxConnections = wrapperspb.UInt32(uint32(n))
	}
	if ka := t.GetTcpKeepalive(); ka != nil {
		k := &core.TcpKeepalive{}
		if ka.GetProbes() > 0 {
			k.KeepaliveProbes = wrapperspb.UInt32(ka.GetProbes())
		}
		if ka.GetTime() != nil {
			k.KeepaliveTime = wrapperspb.UInt32(uint32(ka.GetTime().AsDuration().Seconds()))
		}
		if ka.GetInterval() != nil {
			k.KeepaliveInterval = wrapperspb.UInt32(uint32(ka.GetInterval().AsDuration().Seconds()))
		}
		c.UpstreamConnectionOptions = &cluster.UpstreamConnectionOptions{TcpKeepalive: k}
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{th}}

	idle := h.GetIdleTimeout()
	if idle == nil {
		idle = t.GetIdleTimeout()
	}
	perConn, streams, maxDur, ka := uint32(h.GetMaxRequestsPerConnection()), uint32(h.GetMaxConcurrentStreams()), t.GetMaxConnectionDuration(), h.GetHttp2KeepAlive()
	if idle == nil && perConn == 0 && streams == 0 && maxDur == nil && ka == nil {
		return httpOpts
	}
	if httpOpts == nil {
		// Envoy requires an upstream protocol in these options; Istio
		// fills in HTTP/1.1 (cluster_builder.go, build).
		httpOpts = upstreamHTTPOptions(mesh.ProtoHTTP)
	}
	if httpOpts.CommonHttpProtocolOptions == nil {
		httpOpts.CommonHttpProtocolOptions = &core.HttpProtocolOptions{}
	}
	common := httpOpts.CommonHttpProtocolOptions
	if idle != nil {
		common.IdleTimeout = idle
	}
	if perConn > 0 {
		common.MaxRequestsPerConnection = wrapperspb.UInt32(perConn)
	}
	if maxDur != nil {
		common.MaxConnectionDuration = maxDur
	}
	if h2 := httpOpts.GetExplicitHttpConfig().GetHttp2ProtocolOptions(); h2 != nil {
		if streams > 0 {
			h2.MaxConcurrentStreams = wrapperspb.UInt32(streams)
		}
		if ka != nil {
			h2.ConnectionKeepalive = &core.KeepaliveSettings{Interval: ka.GetInterval(), Timeout: ka.GetTimeout()}
		}
	}
	return httpOpts
}

// applyOutlierDetection (applyOutlierDetection): success-rate ejection off,
// consecutive errors enforced at 100%, and the panic threshold set from
// minHealthPercent (0 unless given: Istio turns panic mode off).
func applyOutlierDetection(c *cluster.Cluster, od *networkingapi.OutlierDetection) {
	if od == nil {
		return
	}
	out := &cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	enforce := func(v uint32) *wrapperspb.UInt32Value {
		if v > 0 {
			v = 100
		}
		return wrapperspb.UInt32(v)
	}
	if e := od.GetConsecutive_5XxErrors(); e != nil {
		out.Consecutive_5Xx = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutive_5Xx = enforce(e.GetValue())
	}
	if e := od.GetConsecutiveGatewayErrors(); e != nil {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutiveGatewayFailure = enforce(e.GetValue())
	}
	if od.GetInterval() != nil {
		out.Interval = od.GetInterval()
	}
	if od.GetBaseEjectionTime() != nil {
		out.BaseEjectionTime = od.GetBaseEjectionTime()
	}
	if n := od.GetMaxEjectionPercent(); n > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(n))
	}
	if od.GetSplitExternalLocalOriginErrors() {
		out.SplitExternalLocalOriginErrors = true
		if n := od.GetConsecutiveLocalOriginFailures().GetValue(); n > 0 {
			out.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(n)
			out.EnforcingConsecutiveLocalOriginFailure = wrapperspb.UInt32(100)
		}
		out.EnforcingLocalOriginSuccessRate = wrapperspb.UInt32(0)
	}
	c.OutlierDetection = out
	if p := od.GetMinHealthPercent(); p >= 0 {
		if c.CommonLbConfig == nil {
			c.CommonLbConfig = &cluster.Cluster_CommonLbConfig{}
		}
		c.CommonLbConfig.HealthyPanicThreshold = &envoytype.Percent{Value: float64(p)}
	}
}

// hashPolicy is the route hash key of a consistent-hash DestinationRule for
// a route's single destination: header, cookie, source IP or query
// parameter (pilot/pkg/networking/core/route/route.go, hashForService,
// ConsistentHashToHashPolicy).
func (b *builder) hashPolicy(vs *networking.VirtualService, d *networkingapi.Destination, port uint32) *route.RouteAction_HashPolicy {
	if d == nil {
		return nil
	}
	host, p := b.destinationHostPort(vs, d, port)
	ch := b.m.TrafficPolicy(host, p, d.GetSubset(), b.proxy).GetLoadBalancer().GetConsistentHash()
	switch ch.GetHashKey().(type) {
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{HeaderName: ch.GetHttpHeaderName()}}}
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		c := ch.GetHttpCookie()
		cp := &route.RouteAction_HashPolicy_Cookie{Name: c.GetName(), Ttl: c.GetTtl(), Path: c.GetPath()}
		for _, a := range c.GetAttributes() {
			cp.Attributes = append(cp.Attributes, &route.RouteAction_HashPolicy_CookieAttribute{Name: a.GetName(), Value: a.GetValue()})
		}
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_Cookie_{Cookie: cp}}
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &route.RouteAction_HashPolicy_ConnectionProperties{SourceIp: ch.GetUseSourceIp()}}}
	case *networkingapi.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &route.RouteAction_HashPolicy_QueryParameter{Name: ch.GetHttpQueryParameterName()}}}
	}
	return nil
}
