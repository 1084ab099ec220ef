package translate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/mesh"
)

// target is one port of one destination host the proxy can call: a
// Kubernetes Service port or a ServiceEntry host port. Outbound listeners,
// routes and clusters are built from targets alone.
type target struct {
	host     string // FQDN for services, the host as written for ServiceEntries
	name, ns string // service name and namespace (short-name domains); ns of the ServiceEntry
	port     uint32 // the port clients dial
	portName string
	proto    mesh.Protocol
	svc      *mesh.Service            // nil for ServiceEntries
	se       *networking.ServiceEntry // nil for Services
	external bool                     // ServiceEntry MESH_EXTERNAL
	resolve  resolution               // how Envoy finds endpoints
	eps      []endpointRef            // endpoints (not for resolveNone)
	resource string                   // "Service default/b", for errors
	sans     []string                 // ServiceEntry subjectAltNames
	prefixes []netip.Prefix           // ServiceEntry addresses (VIPs, CIDRs), or the Service's cluster IP
	vip      netip.Addr               // the Service's cluster IP; invalid for headless Services
	// clusterOnly: the proxy's Sidecar resource imports the target only as
	// a VirtualService destination: a cluster, no listener or route (scoped).
	clusterOnly bool
}

type resolution int

const (
	resolveStatic resolution = iota // IPs known now: STATIC cluster
	resolveDNS                      // hostnames: STRICT_DNS cluster
	resolveNone                     // ORIGINAL_DST cluster
)

// endpointRef is one endpoint of a target.
type endpointRef struct {
	w      *mesh.Workload // nil when no workload of the bundle backs it
	addr   string         // IP, or hostname for resolveDNS
	port   uint32         // the port Envoy connects to (target port)
	labels map[string]string
	// byLabels: a ServiceEntry's own endpoint (spec.endpoints, or a DNS
	// host itself), whose tlsMode comes from its labels (or its
	// serviceAccount) even when it reaches a sidecar pod of the bundle,
	// and whose identity is its serviceAccount's
	// (pilot/pkg/serviceregistry/serviceentry/conversion.go: a DNS host has
	// no labels, getTLSModeFromWorkloadEntry).
	byLabels bool
	sa       string // byLabels: the entry's SPIFFE identity, "" without serviceAccount
}

// identity is the endpoint's SPIFFE ID when it has a sidecar ("" when none
// is known).
func (e endpointRef) identity() string {
	switch {
	case !e.hasSidecar():
		return ""
	case e.byLabels:
		return e.sa
	case e.w != nil:
		return e.w.Identity()
	}
	return ""
}

// hasSidecar reports whether the endpoint carries Istio's
// security.istio.io/tlsMode=istio label, which the endpoint's tlsMode comes
// from (pkg/kube/util or pilot/pkg/serviceregistry/kube, PodTLSMode ->
// model.GetTLSModeFromEndpointLabels; "disabled" without it). Injected
// sidecar pods get it from the sidecar template
// (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml:
// security.istio.io/tlsMode default "istio"); gateways do not: neither the
// gateway injection template (files/gateway-injection-template.yaml, labels
// canonical-name/revision and istio.io/rev only) nor the gateway chart
// (manifests/charts/gateway/templates/deployment.yaml, _helpers.tpl) sets it.
// So auto mTLS sends plaintext to a gateway; mTLS to one takes a
// DestinationRule ISTIO_MUTUAL and an ISTIO_MUTUAL server, as the egress
// gateway task's mTLS variant does. Plain pods have no label either.
func (e endpointRef) hasSidecar() bool {
	if e.w != nil && !e.byLabels {
		return e.w.Sidecar && !e.w.Gateway && !e.w.External
	}
	if mode, ok := e.labels[tlsModeLabel]; ok || !e.byLabels {
		return mode == TLSModeIstio
	}
	return e.sa != ""
}

func (b *builder) addrOf(w *mesh.Workload) (netip.Addr, bool) {
	a, ok := b.env.Addrs[w.ID()]
	if !ok {
		b.fail(fmt.Errorf("workload %s has no address in env.Addrs; build Env.Addrs with mesh.AddressPlan", w.ID()))
	}
	return a, ok
}

// serviceTargets lists every port of every Service the proxy's namespace
// sees (no Sidecar resource: the Services exported to it, Service.VisibleFrom;
// pilot/pkg/model/sidecar.go DefaultSidecarScopeForGateway and the default
// sidecar scope, both from push_context.go servicesExportedToNamespace).
func (b *builder) serviceTargets() []*target {
	var out []*target
	for _, s := range b.m.Services {
		// An ExternalName Service is an alias: no listener, cluster or
		// route of its own (cluster.go buildOutboundClusters, listener.go
		// buildSidecarOutboundListener, route.go: Resolution Alias is
		// skipped); its names join the aliased host's (aliasHosts).
		if !s.VisibleFrom(b.proxy.Namespace) || s.ExternalName != "" {
			continue
		}
		var eps []*mesh.Workload
		for _, w := range b.m.Endpoints(s) {
			// External workloads are outside the registry: reachable only
			// through a ServiceEntry (docs/bundles.md, Workload.external).
			if !w.External {
				eps = append(eps, w)
			}
		}
		for _, sp := range s.Ports {
			t := &target{
				host:     s.Hostname(),
				name:     s.Name,
				ns:       s.Namespace,
				port:     sp.Port,
				portName: sp.Name,
				proto:    mesh.PortProtocol(sp.Name, sp.AppProtocol, sp.Port),
				svc:      s,
				resolve:  resolveStatic,
				resource: fmt.Sprintf("Service %s/%s", s.Namespace, s.Name),
			}
			// A Service with a cluster IP is matched on it: its pods' own
			// addresses are not the Service (listener.go,
			// buildSidecarOutboundListener binds TCP services to
			// GetAddressForProxy); a headless one on each pod's address.
			if vip, ok := b.env.Addrs[s.VIPKey()]; ok {
				t.vip = vip
				t.prefixes = []netip.Prefix{netip.PrefixFrom(vip, vip.BitLen())}
			}
			tp := sp.TargetPort
			if tp == 0 {
				tp = sp.Port
			}
			if s.Manual {
				t.eps = b.manualEndpoints(s, sp)
				out = append(out, t)
				continue
			}
			for _, w := range eps {
				a, ok := b.addrOf(w)
				if !ok {
					continue
				}
				t.eps = append(t.eps, endpointRef{w: w, addr: a.String(), port: tp, labels: w.Labels})
			}
			out = append(out, t)
		}
	}
	return out
}

// manualEndpoints are the endpoints of a selector-less Service's port, from
// its EndpointSlices or Endpoints: the endpoint port of the same name as
// the Service port (endpointslice.go, ServicePortName). A pod of the
// bundle is dialled at its run address, with its labels (tlsMode) and
// identity; an address outside the cluster as written, with no labels, so
// no tlsMode and no identity (getPod finds no pod: NewEndpointBuilder(nil)).
func (b *builder) manualEndpoints(s *mesh.Service, sp mesh.ServicePort) []endpointRef {
	var out []endpointRef
	for _, e := range s.ManualEndpoints {
		port, ok := e.Ports[sp.Name]
		if !ok {
			continue
		}
		if e.Pod != nil {
			if a, ok := b.addrOf(e.Pod); ok {
				out = append(out, endpointRef{w: e.Pod, addr: a.String(), port: port, labels: e.Pod.Labels})
			}
			continue
		}
		out = append(out, endpointRef{w: e.Answer, addr: e.Addr.String(), port: port, byLabels: true})
	}
	return out
}

// aliasHosts are the names of the ExternalName Services the proxy sees
// that alias t's host, each with the short forms a client in the proxy's
// namespace may use: Istio adds them to t's virtual host domains and SNI
// matches (httproute.go generateVirtualHostDomains, tls.go
// buildSidecarOutboundTLSFilterChainOpts, both over Attributes.Aliases).
func (b *builder) aliasHosts(t *target) []string {
	var out []string
	for _, a := range b.m.Aliases(t.host, b.proxy.Namespace) {
		out = append(out, a.Hostname())
		if a.Namespace == b.proxy.Namespace {
			out = append(out, a.Name)
		}
		out = append(out, a.Name+"."+a.Namespace, a.Name+"."+a.Namespace+".svc")
	}
	return out
}

// sidecarTargets are the destinations a sidecar knows: services and the
// ServiceEntries visible from its namespace, narrowed by the Sidecar
// resource that applies to it, sorted by port then host.
func (b *builder) sidecarTargets() []*target {
	ts := b.serviceTargets()
	ts = append(ts, b.serviceEntryTargets(b.proxy.Namespace)...)
	if b.scope == nil {
		// Istio's default scope (egress hosts "*/*") for a sidecar without
		// a Sidecar resource, and a gateway's: one namespace per host.
		ts = b.hostOwners(ts)
	}
	ts = b.scoped(ts)
	slices.SortStableFunc(ts, func(x, y *target) int {
		return cmp.Or(cmp.Compare(x.port, y.port), cmp.Compare(x.host, y.host))
	})
	return ts
}

// hostOwners keeps, for a host that several Services or ServiceEntries
// declare (a ServiceEntry host in two namespaces, or beside a Service of
// that name), the declarations of the namespace the proxy's scope picks
// (mesh.HostNamespace); within it a Kubernetes Service over any
// ServiceEntry, else the oldest entry, to which a later entry Istio can
// merge (same resolution, labels, workloadSelector and exportTo) adds the
// ports it lacks. Sources: pilot/pkg/model/sidecar.go (selectServices,
// appendSidecarServices, canMergeServices).
func (b *builder) hostOwners(ts []*target) []*target {
	type source struct {
		ts  []*target
		key any
	}
	byHost := map[string][]*source{}
	var hosts []string
	for _, t := range ts {
		var key any = t.se
		if t.svc != nil {
			key = t.svc
		}
		ss := byHost[t.host]
		if len(ss) == 0 {
			hosts = append(hosts, t.host)
		}
		i := slices.IndexFunc(ss, func(s *source) bool { return s.key == key })
		if i < 0 {
			ss = append(ss, &source{key: key})
			i = len(ss) - 1
		}
		ss[i].ts = append(ss[i].ts, t)
		byHost[t.host] = ss
	}
	var out []*target
	for _, h := range hosts {
		ss := byHost[h]
		if len(ss) == 1 {
			out = append(out, ss[0].ts...)
			continue
		}
		ns := b.m.HostNamespace(h, b.proxy)
		ss = slices.DeleteFunc(ss, func(s *source) bool { return s.ts[0].ns != ns })
		// A Service first, then ServiceEntries oldest first.
		slices.SortStableFunc(ss, func(x, y *source) int {
			if c := cmp.Compare(boolInt(x.ts[0].svc == nil), boolInt(y.ts[0].svc == nil)); c != 0 || x.ts[0].se == nil {
				return c
			}
			a, b := x.ts[0].se, y.ts[0].se
			return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
		})
		if len(ss) == 0 {
			continue
		}
		win := ss[0].ts[0]
		ports := map[uint32]bool{}
		for _, s := range ss {
			if s != ss[0] && !mergeable(win, s.ts[0]) {
				continue
			}
			for _, t := range s.ts {
				if !ports[t.port] {
					ports[t.port] = true
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// mergeable: two ServiceEntries Istio merges into one service for a
// proxy (sidecar.go canMergeServices): same namespace, resolution, labels,
// workloadSelector and exportTo.
func mergeable(a, b *target) bool {
	if a.se == nil || b.se == nil || a.se.Namespace != b.se.Namespace || a.se.Spec.GetResolution() != b.se.Spec.GetResolution() {
		return false
	}
	sa, sb := a.se.Spec.GetExportTo(), b.se.Spec.GetExportTo()
	return maps.Equal(a.se.Labels, b.se.Labels) &&
		maps.Equal(a.se.Spec.GetWorkloadSelector().GetLabels(), b.se.Spec.GetWorkloadSelector().GetLabels()) &&
		slices.Equal(slices.Sorted(slices.Values(sa)), slices.Sorted(slices.Values(sb)))
}

// matchPrefixes are the destinations a filter chain matches for this
// target: ServiceEntry addresses when given, else the endpoints' IPs (for
// hostnames, the IP of the workload that answers to the name).
func (b *builder) matchPrefixes(t *target) []netip.Prefix {
	if len(t.prefixes) > 0 {
		return t.prefixes
	}
	var out []netip.Prefix
	for _, e := range t.eps {
		a, err := netip.ParseAddr(e.addr)
		if err != nil {
			if e.w == nil {
				continue
			}
			if a, err = b.env.Addrs[e.w.ID()], nil; !a.IsValid() {
				continue
			}
		}
		p := netip.PrefixFrom(a, a.BitLen())
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

// scoped keeps the targets the proxy's Sidecar resource imports: the hosts
// its egress names and the destinations of the VirtualServices it takes,
// with the ports those route to (mesh.SidecarScope.Select). Everything
// else gets no listener, cluster or route: a call to it meets the
// outbound passthrough as any unknown destination (Istio:
// pilot/pkg/model/sidecar.go, the proxy's listeners, clusters and routes
// come from SidecarScope.Services).
func (b *builder) scoped(ts []*target) []*target {
	if b.scope == nil {
		return ts
	}
	type key struct{ host, ns string }
	var dests []mesh.Destination
	at := map[key]int{}
	for _, t := range ts {
		k := key{t.host, t.ns}
		i, ok := at[k]
		if !ok {
			d := mesh.Destination{Host: t.host, Namespace: t.ns, Kube: t.svc != nil}
			var exportTo []string
			if t.se != nil {
				d.Created, exportTo = t.se.CreationTimestamp.Time, t.se.Spec.GetExportTo()
			} else {
				d.Created, exportTo = t.svc.Created, t.svc.ExportTo
			}
			d.Public = len(exportTo) == 0 || slices.Contains(exportTo, "*")
			i = len(dests)
			at[k] = i
			dests = append(dests, d)
		}
		if !slices.Contains(dests[i].Ports, t.port) {
			dests[i].Ports = append(dests[i].Ports, t.port)
		}
	}
	keep := map[key]mesh.Import{}
	for _, im := range b.scope.Select(dests, b.meshVirtualServices()) {
		keep[key{im.Host, im.Namespace}] = im
	}
	ts = slices.DeleteFunc(ts, func(t *target) bool {
		return !slices.Contains(keep[key{t.host, t.ns}].Ports, t.port)
	})
	for _, t := range ts {
		t.clusterOnly = !keep[key{t.host, t.ns}].Listen
	}
	return ts
}

// listened are the targets that get outbound listeners and routes.
func listened(ts []*target) []*target {
	return slices.DeleteFunc(slices.Clone(ts), func(t *target) bool { return t.clusterOnly })
}

// meshVirtualServices are the VirtualServices bound to the sidecars and
// visible from the proxy's namespace, narrowed by its Sidecar resource
// (pilot/pkg/model/virtualservice.go SelectVirtualServices).
func (b *builder) meshVirtualServices() []*networking.VirtualService {
	vs := b.m.VirtualServicesFor(mesh.MeshGateway, b.proxy.Namespace)
	if b.scope == nil {
		return vs
	}
	return slices.DeleteFunc(vs, func(v *networking.VirtualService) bool { return !b.scope.ImportsVirtualService(v) })
}
