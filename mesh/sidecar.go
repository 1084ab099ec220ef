package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// Istio's Sidecar kind: which one applies to a proxy, and which services,
// ServiceEntry hosts and VirtualServices its egress hosts let the proxy
// see. Sources: pilot/pkg/model/push_context.go (initSidecarScopes,
// getSidecarScope), pilot/pkg/model/sidecar.go (convertToSidecarScope,
// convertIstioListenerToWrapper, selectServices, collectImportedServices,
// appendSidecarServices), pilot/pkg/model/virtualservice.go
// (SelectVirtualServices), pkg/config/validation/validation.go
// (ValidateSidecar).

// SidecarFor is the Sidecar that applies to workload w, as istiod picks it:
// in w's namespace the oldest Sidecar whose workloadSelector matches w's
// labels, else the namespace's oldest Sidecar without workloadSelector,
// else the root namespace's oldest Sidecar without workloadSelector; nil
// when none applies. Gateways and pods without a proxy get none
// (getSidecarScope: a router always takes the default scope).
func (m *Mesh) SidecarFor(w *Workload) *networking.Sidecar {
	if w == nil || !w.HasProxy() || w.Gateway {
		return nil
	}
	// m.Sidecars is in Istio's order (oldest first); selector ones win.
	for _, sc := range m.Sidecars {
		if sc.Namespace == w.Namespace && sc.Spec.GetWorkloadSelector() != nil && labelsMatch(sc.Spec.GetWorkloadSelector().GetLabels(), w.Labels) {
			return sc
		}
	}
	for _, ns := range []string{w.Namespace, m.Root()} {
		for _, sc := range m.Sidecars {
			if sc.Namespace == ns && sc.Spec.GetWorkloadSelector() == nil {
				return sc
			}
		}
	}
	return nil
}

// SidecarScope is what one Sidecar lets a proxy in namespace Namespace see.
// A "." in the Sidecar's hosts is that namespace: the proxy's own, also for
// the root namespace's Sidecar applied to another namespace
// (convertToSidecarScope(ps, rootConfig, proxy.ConfigNamespace)).
type SidecarScope struct {
	Sidecar   *networking.Sidecar
	Namespace string
	hosts     map[string]hostClass // by namespace, "*" for any
}

// hostClass is the egress hosts of one namespace (sidecar.go hostClassification).
type hostClass struct {
	hosts    []string // imported dnsNames, exact or wildcard
	excluded []string // dnsNames after a ~ namespace prefix
}

// ScopeFor is the scope of sidecar proxy w: its Sidecar's, or without one
// Istio's default, which imports "*/*" (convertToSidecarScope with no
// Sidecar): every service exported to w's namespace, one namespace per
// hostname. Gateways have none: they see every service exported to their
// namespace (DefaultSidecarScopeForGateway).
func (m *Mesh) ScopeFor(w *Workload) *SidecarScope {
	if w == nil || !w.HasProxy() || w.Gateway {
		return nil
	}
	return NewSidecarScope(m.SidecarFor(w), w.Namespace)
}

// NewSidecarScope reads sc's egress hosts for a proxy in ns. Without egress
// (or without Sidecar, sc nil) the proxy sees everything, as "*/*"
// (initSidecarScopeInternalIndexes). Validation refuses an egress listener
// with a port, so there is at most one egress entry (the catch-all).
func NewSidecarScope(sc *networking.Sidecar, ns string) *SidecarScope {
	s := &SidecarScope{Sidecar: sc, Namespace: ns, hosts: map[string]hostClass{}}
	hosts := []string{"*/*"}
	if sc != nil && len(sc.Spec.GetEgress()) > 0 {
		eg := sc.Spec.GetEgress()
		hosts = eg[len(eg)-1].GetHosts()
	}
	for _, h := range hosts {
		hns, name, ok := strings.Cut(h, "/")
		if !ok {
			continue // refused by validation
		}
		excluded := strings.HasPrefix(hns, "~")
		if excluded {
			if hns = strings.TrimPrefix(hns, "~"); hns == "" {
				hns = "*"
			}
		}
		if hns == "." {
			hns = ns
		}
		c := s.hosts[hns]
		if excluded {
			c.excluded = append(c.excluded, name)
		} else {
			c.hosts = append(c.hosts, name)
		}
		s.hosts[hns] = c
	}
	return s
}

// subsetOf is Istio's host.Name.SubsetOf: every name h covers, o covers
// (pkg/config/host/name.go).
func subsetOf(h, o string) bool {
	hw, ow := strings.HasPrefix(h, "*"), strings.HasPrefix(o, "*")
	switch {
	case hw && ow:
		return len(h) >= len(o) && strings.HasSuffix(h[1:], o[1:])
	case hw:
		return false
	case ow:
		return strings.HasSuffix(h, o[1:])
	}
	return h == o
}

// hostsMatch is Istio's host.Name.Matches: the two names share a host
// (pkg/config/host/name.go).
func hostsMatch(h, o string) bool {
	hw, ow := strings.HasPrefix(h, "*"), strings.HasPrefix(o, "*")
	switch {
	case hw && ow:
		if len(h) < len(o) {
			return strings.HasSuffix(o[1:], h[1:])
		}
		return strings.HasSuffix(h[1:], o[1:])
	case hw:
		return strings.HasSuffix(o, h[1:])
	case ow:
		return strings.HasSuffix(h, o[1:])
	}
	return h == o
}

func (c hostClass) excludes(h string) bool {
	return slices.ContainsFunc(c.excluded, func(e string) bool { return subsetOf(h, e) })
}

// imports is hostClassification.Matches: an exact name equal to h, or,
// when either is a wildcard, h a subset of the imported name.
func (c hostClass) imports(h string) bool {
	return slices.ContainsFunc(c.hosts, func(i string) bool { return subsetOf(h, i) })
}

// importsHost reports whether the egress hosts import host h of namespace
// ns: not excluded by a ~ entry for ns or for any namespace, then an entry
// for ns or for any namespace that covers it (selectServices).
func (s *SidecarScope) importsHost(h, ns string) bool {
	own, okOwn := s.hosts[ns]
	any, okAny := s.hosts["*"]
	if (okOwn && own.excludes(h)) || (okAny && any.excludes(h)) {
		return false
	}
	return (okOwn && own.imports(h)) || (okAny && any.imports(h))
}

// ImportsVirtualService reports whether the scope takes vs: one of its
// hosts (resolved in its namespace) matches, either way round, an egress
// host of the VirtualService's namespace or of "*", and is not excluded
// there (virtualservice.go SelectVirtualServices, VSMatches without
// gateway semantics).
func (s *SidecarScope) ImportsVirtualService(vs *networking.VirtualService) bool {
	any, okAny := s.hosts["*"]
	own, okOwn := s.hosts[vs.Namespace]
	for _, c := range []struct {
		hc hostClass
		ok bool
	}{{own, okOwn}, {any, okAny}} {
		if !c.ok {
			continue
		}
		for _, raw := range vs.Spec.GetHosts() {
			h := resolveShortname(raw, vs.Namespace)
			if !slices.ContainsFunc(c.hc.hosts, func(i string) bool { return hostsMatch(h, i) }) {
				continue
			}
			if (okOwn && own.excludes(h)) || (okAny && any.excludes(h)) {
				continue
			}
			return true
		}
	}
	return false
}

// Destination is one host of the registry a proxy could be given: a
// Service, or a ServiceEntry host, with its ports.
type Destination struct {
	Host      string
	Namespace string
	Kube      bool      // a Kubernetes Service (not a ServiceEntry)
	Created   time.Time // metadata.creationTimestamp
	Public    bool      // exported to every namespace (exportTo empty or "*")
	Ports     []uint32
}

// registryOrder is the order of the services a namespace sees, which
// decides "the first" of a hostname's namespaces: those exported to it by
// name (or private to it) before public ones, each oldest first, then by
// namespace (push_context.go servicesExportedToNamespace,
// SortServicesByCreationTime; the hostname is the same).
func registryOrder(a, b Destination) int {
	if a.Public != b.Public {
		if b.Public {
			return -1
		}
		return 1
	}
	if r := a.Created.Compare(b.Created); r != 0 {
		return r
	}
	return strings.Compare(a.Namespace, b.Namespace)
}

// Import is the part of a Destination a scope takes: the ports kept, and
// whether the proxy gets listeners and routes for it. Only what the egress
// hosts import does: a VirtualService's destination gets its cluster alone,
// reached through that VirtualService's routes (listeners and routes come
// from the egress listener's services, clusters from all the scope's:
// pilot/pkg/networking/core/listener.go buildSidecarOutboundListeners and
// httproute.go use egressListener.Services(), cluster.go
// SidecarScope.Services()).
type Import struct {
	Host, Namespace string
	Ports           []uint32
	Listen          bool
}

// Select is the scope's registry: the destinations (those exported to the
// proxy's namespace, in registry order) its egress hosts import, one
// namespace per hostname (the proxy's own first, then a Kubernetes Service
// over a ServiceEntry, else the first), then the destinations of the
// scope's VirtualServices (vses, already scoped), each with the ports
// its routes name (every port when one names none), added unless the
// hostname was already taken from another namespace.
// Sources: sidecar.go selectServices (PILOT_UNIFIED_SIDECAR_SCOPE on),
// collectImportedServices, serviceMatchingVirtualServicePorts,
// appendSidecarServices; push_context.go
// virtualServiceDestinationsFilteredBySourceNamespace;
// pickBestVisibleNamespace (PILOT_SIDECAR_PICK_BEST_SERVICE_NAMESPACE on).
// One deviation: Istio takes a VirtualService destination in the proxy's
// own namespace without a visibility check (byNamespace[configNamespace]);
// here only visible ones count, so a Service of the proxy's namespace
// exported to "~" stays hidden.
func (s *SidecarScope) Select(visible []Destination, vses []*networking.VirtualService) []Import {
	type pick struct {
		ns   string
		kube bool
	}
	chosen := map[string]pick{} // hostname -> the namespace the hosts import it from
	var out []Import
	var explicit []Destination
	for _, d := range visible {
		if s.importsHost(d.Host, d.Namespace) {
			explicit = append(explicit, d)
		}
	}
	byHost := map[string][]Destination{}
	for _, d := range explicit {
		byHost[d.Host] = append(byHost[d.Host], d)
	}
	for _, ds := range byHost {
		slices.SortStableFunc(ds, registryOrder)
		for _, d := range ds {
			p, seen := chosen[d.Host]
			switch {
			case !seen, d.Namespace == s.Namespace:
				chosen[d.Host] = pick{d.Namespace, d.Kube}
			case !p.kube && d.Kube && (d.Namespace == s.Namespace || p.ns != s.Namespace):
				chosen[d.Host] = pick{d.Namespace, d.Kube}
			}
		}
	}
	added := map[string]int{} // host -> index in out
	for _, d := range explicit {
		if chosen[d.Host].ns != d.Namespace {
			continue
		}
		if i, ok := added[d.Host]; ok {
			out[i].Ports = union(out[i].Ports, d.Ports)
			continue
		}
		added[d.Host] = len(out)
		out = append(out, Import{Host: d.Host, Namespace: d.Namespace, Ports: slices.Clone(d.Ports), Listen: true})
	}
	for _, vs := range vses {
		for _, dh := range vsDestinations(vs, s.Namespace) {
			d, ok := pickDestination(dh.host, s.Namespace, visible)
			if !ok {
				continue
			}
			ports := d.Ports
			if !slices.Contains(dh.ports, 0) {
				ports = slices.DeleteFunc(slices.Clone(d.Ports), func(p uint32) bool { return !slices.Contains(dh.ports, p) })
			}
			if len(ports) == 0 {
				continue
			}
			i, ok := added[d.Host]
			switch {
			case !ok:
				added[d.Host] = len(out)
				out = append(out, Import{Host: d.Host, Namespace: d.Namespace, Ports: ports})
			case out[i].Namespace == d.Namespace:
				out[i].Ports = union(out[i].Ports, ports)
			}
			// Deviation: Istio's clusters (not its listeners) take a
			// Kubernetes Service found this way over a ServiceEntry of
			// the same hostname the hosts imported from another
			// namespace (appendSidecarServices); here the entry stays.
		}
	}
	return out
}

func union(a, b []uint32) []uint32 {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	return a
}

// pickDestination is the destination a VirtualService's host names for a
// proxy in ns: the one in ns, else a visible Kubernetes Service, else the
// oldest visible ServiceEntry host.
func pickDestination(host, ns string, visible []Destination) (Destination, bool) {
	for _, d := range visible {
		if d.Host == host && d.Namespace == ns {
			return d, true
		}
	}
	var best *Destination
	for i, d := range visible {
		if d.Host != host {
			continue
		}
		if d.Kube {
			return d, true
		}
		if best == nil || d.Created.Before(best.Created) {
			best = &visible[i]
		}
	}
	if best == nil {
		return Destination{}, false
	}
	return *best, true
}

type vsDest struct {
	host  string
	ports []uint32 // 0: a route names no port
}

// vsDestinations are the hosts (resolved in the VirtualService's
// namespace) and ports of vs's route, mirror and tcp/tls destinations,
// leaving out http routes whose matches all name another sourceNamespace
// (push_context.go virtualServiceDestinationsFilteredBySourceNamespace).
func vsDestinations(vs *networking.VirtualService, ns string) []vsDest {
	var out []vsDest
	add := func(d *networkingapi.Destination) {
		if d == nil {
			return
		}
		h := resolveShortname(d.GetHost(), vs.Namespace)
		p := d.GetPort().GetNumber()
		for i := range out {
			if out[i].host == h {
				out[i].ports = union(out[i].ports, []uint32{p})
				return
			}
		}
		out = append(out, vsDest{host: h, ports: []uint32{p}})
	}
	for _, h := range vs.Spec.GetHttp() {
		matched := true
		for _, m := range h.GetMatch() {
			if m.GetSourceNamespace() != "" {
				if m.GetSourceNamespace() == ns {
					matched = true
					break
				}
				matched = false
			}
		}
		if !matched {
			continue
		}
		for _, r := range h.GetRoute() {
			add(r.GetDestination())
		}
		add(h.GetMirror())
		for _, m := range h.GetMirrors() {
			add(m.GetDestination())
		}
	}
	for _, t := range vs.Spec.GetTcp() {
		for _, r := range t.GetRoute() {
			add(r.GetDestination())
		}
	}
	for _, t := range vs.Spec.GetTls() {
		for _, r := range t.GetRoute() {
			add(r.GetDestination())
		}
	}
	return out
}

// validateSidecar mirrors validation.go ValidateSidecar, and refuses the
// fields meshtls does not model: each can change which listener takes a
// connection, its TLS or whether it gets through.
func (l *loader) validateSidecar(sc *networking.Sidecar, rep report) {
	spec := &sc.Spec
	if sel := spec.GetWorkloadSelector(); sel != nil {
		for k, v := range sel.GetLabels() {
			if k == "" || strings.Contains(k, "*") || strings.Contains(v, "*") {
				rep("spec.workloadSelector.labels", fmt.Sprintf("invalid selector %s=%s: empty keys and wildcards are not allowed", k, v))
			}
		}
	}
	if len(spec.GetEgress()) == 0 && len(spec.GetIngress()) == 0 && spec.GetOutboundTrafficPolicy() == nil && spec.GetInboundConnectionPool() == nil {
		rep("spec", "empty configuration provided (give egress, ingress, outboundTrafficPolicy or inboundConnectionPool)")
	}
	if len(spec.GetIngress()) > 0 {
		rep("spec.ingress", "not supported by meshtls yet: ingress listeners replace the proxy's inbound listeners; remove spec.ingress (the proxy then gets Istio's default inbound listeners)")
	}
	if spec.GetInboundConnectionPool() != nil {
		rep("spec.inboundConnectionPool", "not supported by meshtls yet: connection limits on the inbound clusters can refuse calls; remove it")
	}
	for i, e := range spec.GetEgress() {
		f := fmt.Sprintf("spec.egress[%d]", i)
		if e.GetPort() != nil {
			rep(f+".port", "not supported by meshtls yet: an egress listener for one port changes which services that port's listener serves; remove the port (the hosts then apply to every port)")
		}
		if e.GetBind() != "" {
			rep(f+".bind", "not supported by meshtls yet: it binds the listener to an address; remove it")
		}
		if e.GetCaptureMode() != networkingapi.CaptureMode_DEFAULT {
			rep(f+".captureMode", fmt.Sprintf("not supported by meshtls yet: %s changes how the proxy receives outbound traffic; remove it", e.GetCaptureMode()))
		}
		if e.GetPort() == nil && i != len(spec.GetEgress())-1 {
			rep(f, "the egress listener with empty port should be the last listener in the list")
		}
		if len(e.GetHosts()) == 0 {
			rep(f+".hosts", "egress listener must contain at least one host")
		}
		for j, h := range e.GetHosts() {
			if msg := checkEgressHost(h); msg != "" {
				rep(fmt.Sprintf("%s.hosts[%d]", f, j), fmt.Sprintf("%q: %s", h, msg))
			}
		}
	}
	// The mode overrides the mesh config's (Mesh.OutboundTrafficPolicy).
	if tp := spec.GetOutboundTrafficPolicy(); tp != nil {
		switch {
		case tp.GetEgressProxy() != nil && tp.GetMode() != networkingapi.OutboundTrafficPolicy_ALLOW_ANY:
			rep("spec.outboundTrafficPolicy.egressProxy", "egressProxy must be set only with ALLOW_ANY mode")
		case tp.GetEgressProxy() != nil:
			rep("spec.outboundTrafficPolicy.egressProxy", "not supported by meshtls yet: it sends unknown destinations to another host; remove it")
		case tp.GetMode() != networkingapi.OutboundTrafficPolicy_ALLOW_ANY && tp.GetMode() != networkingapi.OutboundTrafficPolicy_REGISTRY_ONLY:
			rep("spec.outboundTrafficPolicy.mode", fmt.Sprintf("%s is only supported in the mesh config, not in a Sidecar", tp.GetMode()))
		}
	}
}

// checkEgressHost is the form of an egress host: namespace/dnsName, the
// namespace "*", "." or a name (with an optional "~" in front), the
// dnsName "*", "*.suffix" or a name (agent.ValidateNamespaceSlashWildcardHostname).
func checkEgressHost(h string) string {
	ns, name, ok := strings.Cut(h, "/")
	if !ok || strings.Contains(name, "/") {
		return "must be namespace/dnsName, e.g. ./*, istio-system/*, */foo.example.com"
	}
	ns = strings.TrimPrefix(ns, "~")
	if ns == "" && !strings.HasPrefix(h, "~") {
		return "the namespace part is empty (use . for the Sidecar's namespace, * for any)"
	}
	if name == "" {
		return "the dnsName part is empty (use * for every host)"
	}
	if name != "*" && strings.Contains(strings.TrimPrefix(name, "*."), "*") {
		return "a wildcard is allowed only as the whole dnsName (*) or its first label (*.example.com)"
	}
	return ""
}
