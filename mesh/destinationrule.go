package mesh

import (
	"slices"
	"strings"
	"sync"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// DestinationRules as Istio indexes, merges and looks them up.
// Source: pilot/pkg/model/push_context.go (setDestinationRules,
// destinationRule, getExportedDestinationRuleFromNamespace),
// pilot/pkg/model/destination_rule.go (mergeDestinationRule) and
// pilot/pkg/model/sidecar.go (SidecarScope.DestinationRule).

// mergedDR is one entry of the index: a rule, with the subsets (and, when it
// had none, the top-level trafficPolicy) of later rules for the same host
// merged into a copy of it.
type mergedDR struct {
	rule     *networking.DestinationRule
	exportTo []string // as a set: sorted, no duplicates
}

// drHosts maps a DR host (FQDN or wildcard) to its merged rules, in order.
type drHosts map[string][]*mergedDR

// drIndex is Istio's three pools: per namespace, every rule a client of that
// namespace sees first (exportTo empty, "*", "." or the own namespace);
// per namespace, the rules exported beyond it; and the private rules of the
// root namespace.
type drIndex struct {
	local     map[string]drHosts
	exported  map[string]drHosts
	rootLocal drHosts
}

// drCache holds the index for one DestinationRules slice.
type drCache struct {
	once sync.Once
	drs  []*networking.DestinationRule
	ix   *drIndex
}

func (m *Mesh) drIndex() *drIndex {
	c := m.drs.Load()
	if c == nil || !sameSlice(c.drs, m.DestinationRules) {
		c = &drCache{drs: m.DestinationRules}
		m.drs.Store(c)
	}
	c.once.Do(func() { c.ix = buildDRIndex(c.drs, m.Root()) })
	return c.ix
}

// drExportTo is a rule's exportTo as a set; a rule with a workloadSelector
// is never exported beyond its namespace (setDestinationRules).
func drExportTo(dr *networking.DestinationRule) []string {
	if dr.Spec.GetWorkloadSelector() != nil {
		return []string{"."}
	}
	out := slices.Clone(dr.Spec.GetExportTo())
	slices.Sort(out)
	return slices.Compact(out)
}

func buildDRIndex(all []*networking.DestinationRule, root string) *drIndex {
	// Rules with a workloadSelector first, then Istio's order (already the
	// mesh's order): if two rules set a top-level traffic policy, the first
	// one's is kept (sortConfigBySelectorAndCreationTime).
	drs := slices.Clone(all)
	slices.SortStableFunc(drs, func(a, b *networking.DestinationRule) int {
		as, bs := a.Spec.GetWorkloadSelector() != nil, b.Spec.GetWorkloadSelector() != nil
		switch {
		case as && !bs:
			return -1
		case !as && bs:
			return 1
		}
		return 0
	})
	ix := &drIndex{local: map[string]drHosts{}, exported: map[string]drHosts{}, rootLocal: drHosts{}}
	pool := func(m map[string]drHosts, ns string) drHosts {
		if m[ns] == nil {
			m[ns] = drHosts{}
		}
		return m[ns]
	}
	for _, dr := range drs {
		ns := dr.Namespace
		exp := drExportTo(dr)
		if len(exp) == 0 || slices.Contains(exp, "*") || slices.Contains(exp, ".") || slices.Contains(exp, ns) {
			mergeDR(pool(ix.local, ns), dr, exp)
		}
		private := len(exp) == 1 && (exp[0] == "." || exp[0] == ns)
		switch {
		case !private:
			mergeDR(pool(ix.exported, ns), dr, exp)
		case ns == root:
			mergeDR(ix.rootLocal, dr, exp)
		}
	}
	return ix
}

// mergeDR adds dr to the rules for its host. A rule merges into an earlier
// one with the same exportTo (or a subset of its exportTo) when both have no
// workloadSelector or equal ones: unseen subsets are appended, and the
// earlier rule's top-level trafficPolicy is kept unless it had none.
// Otherwise the rule stands on its own (mergeDestinationRule, with
// ENABLE_ENHANCED_DESTINATIONRULE_MERGE on, its default).
func mergeDR(p drHosts, dr *networking.DestinationRule, exp []string) {
	host := resolveShortname(dr.Spec.GetHost(), dr.Namespace)
	list, exists := p[host]
	if !exists {
		p[host] = []*mergedDR{{rule: dr, exportTo: exp}}
		return
	}
	separately := true
	sel := dr.Spec.GetWorkloadSelector()
	for _, md := range list {
		if slices.Equal(exp, md.exportTo) {
			separately = false
		} else if len(md.exportTo) == 0 || !isSuperset(exp, md.exportTo) {
			separately = true
			continue
		} else {
			separately = true // merged below and also kept on its own
		}
		mine := md.rule.Spec.GetWorkloadSelector()
		bothWith, bothWithout := mine != nil && sel != nil, mine == nil && sel == nil
		same := labelsEqual(mine.GetMatchLabels(), sel.GetMatchLabels())
		if bothWith && !same {
			separately = true
			continue
		}
		if bothWithout || (bothWith && same) {
			separately = false
		}
		merged := md.rule.DeepCopy()
		have := map[string]bool{}
		for _, s := range merged.Spec.Subsets {
			have[s.GetName()] = true
		}
		for _, s := range dr.Spec.GetSubsets() {
			if !have[s.GetName()] { // a duplicate subset name keeps the first
				merged.Spec.Subsets = append(merged.Spec.Subsets, s)
			}
		}
		if merged.Spec.TrafficPolicy == nil {
			merged.Spec.TrafficPolicy = dr.Spec.GetTrafficPolicy()
		}
		md.rule = merged
	}
	if separately {
		p[host] = append(p[host], &mergedDR{rule: dr, exportTo: exp})
	}
}

func isSuperset(a, b []string) bool {
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// mostSpecific finds the rules for host: the exact host, else the longest
// wildcard covering it (model/config.go MostSpecificHostMatch).
func (p drHosts) mostSpecific(host string) []*mergedDR {
	if l, ok := p[host]; ok && !strings.HasPrefix(host, "*") {
		return l
	}
	best := ""
	for h := range p {
		if !strings.HasPrefix(h, "*") || !hostMatches(h, host) {
			continue
		}
		if best == "" || len(h) > len(best) || (len(h) == len(best) && h < best) {
			best = h
		}
	}
	if best == "" {
		return nil
	}
	return p[best]
}

// exportedFrom: the rules of ns for host that are exported to clientNS.
func (ix *drIndex) exportedFrom(ns, host, clientNS string) []*mergedDR {
	var out []*mergedDR
	for _, md := range ix.exported[ns].mostSpecific(host) {
		if len(md.exportTo) == 0 || slices.Contains(md.exportTo, "*") || slices.Contains(md.exportTo, clientNS) {
			out = append(out, md)
		}
	}
	return out
}

// canonicalHost turns a service short name into its FQDN; other hosts stay.
func (m *Mesh) canonicalHost(host, clientNS string) string {
	if s, ok := m.ServiceByHost(host, clientNS); ok {
		return s.Hostname()
	}
	return host
}

// DestinationRuleFor is the DestinationRule, merged as Istio merges rules
// for one host, that applies to client's outbound traffic to host; nil when
// none. Lookup (push_context.go destinationRule): 1. the rules a client of
// its namespace sees (for a client in the root namespace, only the root
// namespace's private ones), 2. rules of the service's namespace exported to
// the client's, 3. rules of the root namespace exported to it; exact host
// before the most specific wildcard. Among the rules found, one with a
// workloadSelector in the client's namespace that selects the client wins,
// else the last one without a selector (sidecar.go DestinationRule).
func (m *Mesh) DestinationRuleFor(host string, client *Workload) *networking.DestinationRule {
	ns := client.Namespace
	host = m.canonicalHost(host, ns)
	ix := m.drIndex()
	var found []*mergedDR
	if ns != m.Root() {
		found = ix.local[ns].mostSpecific(host)
	} else {
		found = ix.rootLocal.mostSpecific(host)
	}
	if len(found) == 0 {
		if svcNS := m.HostNamespace(host, client); svcNS != "" {
			found = ix.exportedFrom(svcNS, host, ns)
		}
	}
	if len(found) == 0 {
		found = ix.exportedFrom(m.Root(), host, ns)
	}
	var catchAll *networking.DestinationRule
	for _, md := range found {
		sel := md.rule.Spec.GetWorkloadSelector()
		if sel == nil {
			catchAll = md.rule
			continue
		}
		if md.rule.Namespace == ns && labelsMatch(sel.GetMatchLabels(), client.Labels) {
			return md.rule
		}
	}
	return catchAll
}

// ClientTLS is the TLS a client sends to host:port (subset may be ""):
// subset portLevelSettings > subset trafficPolicy > DR portLevelSettings >
// DR trafficPolicy. nil means no tls set anywhere: auto mTLS.
// port is the service port. Source: pilot/pkg/networking/core/cluster_builder.go
// (MergeTrafficPolicy, buildSubsetCluster) and cluster_tls.go.
func (m *Mesh) ClientTLS(host string, port uint32, subset string, client *Workload) *networkingapi.ClientTLSSettings {
	dr := m.DestinationRuleFor(host, client)
	if dr == nil {
		return nil
	}
	var sp *networkingapi.TrafficPolicy
	if s, ok := findSubset(dr, subset); ok {
		sp = s.GetTrafficPolicy()
	}
	return mergeTLS(dr.Spec.GetTrafficPolicy(), sp, port)
}

// Subset finds a named subset of the DestinationRule that applies to host.
func (m *Mesh) Subset(host, subset string, client *Workload) (*networkingapi.Subset, bool) {
	dr := m.DestinationRuleFor(host, client)
	if dr == nil {
		return nil, false
	}
	return findSubset(dr, subset)
}

func findSubset(dr *networking.DestinationRule, name string) (*networkingapi.Subset, bool) {
	if name == "" {
		return nil, false
	}
	for _, s := range dr.Spec.GetSubsets() {
		if s.GetName() == name {
			return s, true
		}
	}
	return nil, false
}

// mergeTLS mirrors MergeTrafficPolicy for the tls field: the subset's tls
// beats the DR's; a portLevelSettings entry for the port replaces tls
// entirely, even with none set ("port level policies do not inherit").
// Source: pilot/pkg/networking/core/cluster_builder.go (MergeTrafficPolicy).
func mergeTLS(original, subset *networkingapi.TrafficPolicy, port uint32) *networkingapi.ClientTLSSettings {
	portTLS := func(p *networkingapi.TrafficPolicy, fallback *networkingapi.ClientTLSSettings) *networkingapi.ClientTLSSettings {
		for _, pl := range p.GetPortLevelSettings() {
			if pl.GetPort().GetNumber() == port {
				return pl.GetTls()
			}
		}
		return fallback
	}
	tls := portTLS(original, original.GetTls())
	if subset == nil {
		return tls
	}
	if subset.GetTls() != nil {
		tls = subset.GetTls()
	}
	return portTLS(subset, tls)
}
