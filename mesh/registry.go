package mesh

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// The registry: workloads, services and the hosts that name them, and which
// namespaces see a resource (exportTo). The per-kind questions translation
// asks live in the file named for the kind (peerauthentication.go,
// destinationrule.go, gateway.go, virtualservice.go, serviceentry.go).

// splitRef turns "name" (namespace default) or "namespace/name" into parts.
func splitRef(ref string) (ns, name string) {
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return "default", ref
}

// Workload finds a workload by ref ("name" in default, or "namespace/name").
func (m *Mesh) Workload(ref string) (*Workload, bool) {
	ns, name := splitRef(ref)
	for _, w := range m.Workloads {
		if w.Namespace == ns && w.Name == name {
			return w, true
		}
	}
	// A Deployment (or other controller) with several replicas: its first pod.
	for _, w := range m.Workloads {
		if w.Controller == ns+"/"+name {
			return w, true
		}
	}
	return nil, false
}

// labelsMatch: every selector label is on the workload (labels.Instance.SubsetOf).
// An empty selector matches everything; callers decide what empty means.
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// ServiceByHost finds a service (given or implied) by FQDN or by the short
// forms resolved from clientNS ("b", "b.default", "b.default.svc").
// The short forms are what the pod's DNS search path
// ("NS.svc.cluster.local svc.cluster.local cluster.local") resolves.
func (m *Mesh) ServiceByHost(host, clientNS string) (*Service, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	var name, ns string
	parts := strings.Split(host, ".")
	switch {
	case strings.HasSuffix(host, "."+DomainSuffix) && len(parts) == 5:
		name, ns = parts[0], parts[1]
	case len(parts) == 1:
		name, ns = parts[0], clientNS
	case len(parts) == 2:
		name, ns = parts[0], parts[1]
	case len(parts) == 3 && parts[2] == "svc":
		name, ns = parts[0], parts[1]
	default:
		return nil, false
	}
	s, ok := m.idx().byName[ns+"/"+name]
	return s, ok
}

// Resolves reports whether name resolves in a pod of namespace ns: a
// Service's name in a form Kubernetes DNS answers (an ExternalName one
// through its target), or a workload's hostname.
func (m *Mesh) Resolves(name, ns string) bool {
	if s, ok := m.ServiceByHost(name, ns); ok {
		return s.ExternalName == "" || m.ExternalNameTarget(s) != ""
	}
	for _, w := range m.Workloads {
		if slices.Contains(w.Hostnames, name) {
			return true
		}
	}
	return false
}

// Endpoints are the workloads a service selects (same namespace, labels match).
// A Service without a selector has the pods its Endpoints or
// EndpointSlices name (kube_endpoints.go; addresses outside the cluster
// are in Service.ManualEndpoints only). External workloads are not in the
// registry, so no Service selects them.
func (m *Mesh) Endpoints(s *Service) []*Workload {
	if eps, ok := m.idx().eps[s]; ok {
		return slices.Clip(eps) // shared: an append must not write into the index
	}
	return m.scanEndpoints(s)
}

func (m *Mesh) scanEndpoints(s *Service) []*Workload {
	if s.Manual {
		return manualPods(s)
	}
	if len(s.Selector) == 0 {
		return nil
	}
	var out []*Workload
	for _, w := range m.Workloads {
		if w.Namespace == s.Namespace && !w.External && labelsMatch(s.Selector, w.Labels) {
			out = append(out, w)
		}
	}
	return out
}

// InboundPort is a port of a workload that a Service selecting it
// declares: the Service port's target port, with that Service port's
// protocol.
type InboundPort struct {
	Port     uint32
	Protocol Protocol
}

// InboundPorts are the ports of w that Services declare, by port number.
// Istio builds a sidecar's inbound filter chains from these alone (the
// proxy's service targets); a port the app listens on that no Service
// declares is left to the passthrough chains. When two Service ports
// target one port, the first Service's decides its protocol, as Istio
// keeps the oldest Service's.
// Source: pilot/pkg/networking/core/listener_inbound.go
// (getFilterChainsByServicePort, buildInboundPassthroughChains).
func (m *Mesh) InboundPorts(w *Workload) []InboundPort {
	var out []InboundPort
	for _, s := range m.Services {
		if s.Namespace != w.Namespace || !slices.Contains(m.Endpoints(s), w) {
			continue
		}
		for _, sp := range s.Ports {
			if sp.TargetPort == 0 || slices.ContainsFunc(out, func(p InboundPort) bool { return p.Port == sp.TargetPort }) {
				continue
			}
			out = append(out, InboundPort{Port: sp.TargetPort, Protocol: PortProtocol(sp.Name, sp.AppProtocol, sp.Port)})
		}
	}
	slices.SortFunc(out, func(a, b InboundPort) int { return cmp.Compare(a.Port, b.Port) })
	return out
}

// ServiceAccounts of a service's endpoints, as SPIFFE IDs, sorted.
func (m *Mesh) ServiceAccounts(s *Service) []string {
	var out []string
	for _, w := range m.Endpoints(s) {
		out = append(out, w.Identity())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveShortname expands a host without dots to name.ns.svc.cluster.local;
// "*", names with dots and IPs stay as written.
// Source: pilot/pkg/model/config.go (ResolveShortnameToFQDN).
func resolveShortname(host, ns string) string {
	if host == "" || host == "*" || strings.Contains(host, ".") || strings.Contains(host, ":") {
		return host
	}
	return host + "." + ns + "." + DomainSuffix
}

// hostMatches: exact, or a wildcard "*.suffix" / "*" covering host.
// Source: pkg/config/host/name.go (Name.Matches).
func hostMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if strings.HasPrefix(pattern, "*") {
		return strings.HasSuffix(host, pattern[1:])
	}
	return false
}

// exportedTo reports whether a resource in ns with exportTo is visible from
// clientNS. Empty means "*" (meshConfig defaultServiceExportTo and the other
// defaults are unset: all). "*" anywhere makes it public; otherwise "~"
// anywhere hides it from every namespace; "." is its own namespace, a name
// that namespace. Source: pkg/config/visibility/visibility.go and
// pilot/pkg/model/push_context.go (initServiceRegistry: Public first, then
// None, then "." or names into exportedToNamespace; IsServiceVisible;
// initDefaultExportMaps).
func exportedTo(ns string, exportTo []string, clientNS string) bool {
	if len(exportTo) == 0 || slices.Contains(exportTo, "*") {
		return true
	}
	if slices.Contains(exportTo, "~") {
		return false
	}
	for _, e := range exportTo {
		if e == clientNS || (e == "." && ns == clientNS) {
			return true
		}
	}
	return false
}

// VisibleFrom reports whether proxies in namespace ns see the Service: its
// outbound clusters, listeners and routes (the default sidecar and gateway
// scopes hold servicesExportedToNamespace, pilot/pkg/model/sidecar.go).
func (s *Service) VisibleFrom(ns string) bool {
	return exportedTo(s.Namespace, s.ExportTo, ns)
}

// HostNamespace is the namespace whose Service or ServiceEntries declare
// host for proxy w, when several namespaces declare it ("" when none
// visible from w's namespace does). Candidates come in istiod's order:
// those exported to w's namespace by name or "." before those exported
// to all, each oldest first (creationTimestamp, then namespace). A
// sidecar (the default scope, egress hosts "*/*") keeps its own namespace
// when that declares the host, else the first, a Kubernetes Service
// before a ServiceEntry; a gateway keeps the first, a Kubernetes Service
// before a ServiceEntry. Sources: pilot/pkg/model/sidecar.go
// (IstioEgressListenerWrapper.selectServices, UnifiedSidecarScoping on by
// default; DefaultSidecarScopeForGateway and appendSidecarServices for
// gateways); pilot/pkg/model/push_context.go (servicesExportedToNamespace,
// SortServicesByCreationTime).
func (m *Mesh) HostNamespace(host string, w *Workload) string {
	type decl struct {
		ns       string
		k8s      bool
		explicit bool
		created  time.Time
	}
	var ds []decl
	if s, ok := m.serviceByFQDN(host); ok && s.VisibleFrom(w.Namespace) {
		ds = append(ds, decl{ns: s.Namespace, k8s: true, explicit: !exportedToAll(s.ExportTo), created: s.Created})
	}
	for _, se := range m.ServiceEntriesFor(w.Namespace) {
		if slices.Contains(se.Spec.GetHosts(), host) {
			ds = append(ds, decl{ns: se.Namespace, explicit: !exportedToAll(se.Spec.GetExportTo()), created: se.CreationTimestamp.Time})
		}
	}
	if len(ds) == 0 {
		return ""
	}
	slices.SortStableFunc(ds, func(a, b decl) int {
		return cmp.Or(-cmpBool(a.explicit, b.explicit), a.created.Compare(b.created), strings.Compare(a.ns, b.ns))
	})
	pick := ds[0]
	for _, d := range ds[1:] {
		switch {
		case w.Gateway:
			if d.k8s && !pick.k8s {
				pick = d
			}
		case d.ns == w.Namespace && pick.ns != w.Namespace:
			pick = d
		case !pick.k8s && d.k8s && (d.ns == w.Namespace || pick.ns != w.Namespace):
			pick = d
		}
	}
	return pick.ns
}

// exportedToAll: no exportTo (the mesh default, all) or "*".
func exportedToAll(exportTo []string) bool {
	return len(exportTo) == 0 || slices.Contains(exportTo, "*")
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
