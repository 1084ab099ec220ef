package mesh

import (
	networkingapi "istio.io/api/networking/v1alpha3"
)

// TrafficPolicy is the DestinationRule policy a client applies to
// host:port (subset may be ""), merged as Istio does: the rule's policy,
// replaced wholesale by its portLevelSettings entry for the port; then the
// fields the subset's policy sets, replaced wholesale by the subset's
// portLevelSettings entry ("port level policies do not inherit"). The
// result has no portLevelSettings; nil when no rule applies.
// Source: pilot/pkg/model/destination_rule.go (MergeTrafficPolicy,
// ShallowCopyTrafficPolicy) and pilot/pkg/networking/util (MergeSubsetTrafficPolicy).
func (m *Mesh) TrafficPolicy(host string, port uint32, subset string, client *Workload) *networkingapi.TrafficPolicy {
	dr := m.DestinationRuleFor(host, client)
	if dr == nil {
		return nil
	}
	out := mergePolicy(&networkingapi.TrafficPolicy{}, dr.Spec.GetTrafficPolicy(), port)
	if subset != "" {
		for _, s := range dr.Spec.GetSubsets() {
			if s.GetName() == subset {
				out = mergePolicy(out, s.GetTrafficPolicy(), port)
				break
			}
		}
	}
	return out
}

// mergePolicy overlays p's set fields on out, then p's port-level entry for
// port on every field it covers.
func mergePolicy(out, p *networkingapi.TrafficPolicy, port uint32) *networkingapi.TrafficPolicy {
	if p == nil {
		return out
	}
	if p.GetConnectionPool() != nil {
		out.ConnectionPool = p.GetConnectionPool()
	}
	if p.GetOutlierDetection() != nil {
		out.OutlierDetection = p.GetOutlierDetection()
	}
	if p.GetLoadBalancer() != nil {
		out.LoadBalancer = p.GetLoadBalancer()
	}
	if p.GetTls() != nil {
		out.Tls = p.GetTls()
	}
	if p.GetTunnel() != nil {
		out.Tunnel = p.GetTunnel()
	}
	if p.GetProxyProtocol() != nil {
		out.ProxyProtocol = p.GetProxyProtocol()
	}
	if p.GetRetryBudget() != nil {
		out.RetryBudget = p.GetRetryBudget()
	}
	for _, pl := range p.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() == port {
			out.ConnectionPool = pl.GetConnectionPool()
			out.OutlierDetection = pl.GetOutlierDetection()
			out.LoadBalancer = pl.GetLoadBalancer()
			out.Tls = pl.GetTls()
			break
		}
	}
	return out
}
