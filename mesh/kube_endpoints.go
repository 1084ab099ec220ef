package mesh

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Endpoints and EndpointSlices of Services without a selector, and
// ExternalName aliases: the two ways a Kubernetes Service names something
// that is not a pod the Service selects.
//
// Istio reads EndpointSlices only (pilot/pkg/serviceregistry/kube/controller/endpointslice.go,
// updateEndpointCacheForSlice); a v1 Endpoints object written by hand reaches
// it as the EndpointSlice Kubernetes' endpointslicemirroring controller
// copies from it. Each address becomes an endpoint: when its targetRef
// names a pod, with that pod's labels and service account (so its tlsMode
// and identity); otherwise with none (getPod finds no pod at that IP:
// tlsMode disabled, no identity, so auto mTLS sends plaintext).
//
// A bundle's addresses are a cluster's, not the run's: a targetRef to a
// pod of the bundle stands for that pod's run address; any other address
// must be one a Workload with external: true lists in spec.addresses, and
// every pod's traffic to it is rewritten to that workload (harness), so
// nothing is sent outside the run's network. An address nothing answers is
// refused, since the run cannot reach it.

// endpointsDoc is an Endpoints or EndpointSlice document, resolved once
// every Service and workload is known (resolveEndpoints).
type endpointsDoc struct {
	src     Source
	kind    string
	name    string // namespace/name
	ns, svc string // the Service it belongs to
	addrs   []endpointAddr
	ports   []endpointPort
}

type endpointAddr struct {
	ip     string
	ref    *corev1.ObjectReference
	ready  bool
	field  string
	portsN int // index into endpointsDoc.ports groups (Endpoints subsets)
}

type endpointPort struct {
	group int // Endpoints: the subset; EndpointSlice: 0
	name  string
	port  int32
}

func loadEndpoints(l *loader, d *doc) {
	//lint:ignore SA1019 clusters still serve and dump v1 Endpoints, which a bundle from kubectl carries; EndpointSlices are read too
	e, ok := decodeKube[corev1.Endpoints](d)
	if !ok {
		return
	}
	ed := &endpointsDoc{src: d.src, kind: d.kind, name: d.name, ns: d.meta.Namespace, svc: d.meta.Name}
	for i, ss := range e.Subsets {
		for j, a := range ss.Addresses {
			ed.addrs = append(ed.addrs, endpointAddr{ip: a.IP, ref: a.TargetRef, ready: true, field: fmt.Sprintf("subsets[%d].addresses[%d]", i, j), portsN: i})
		}
		for j, a := range ss.NotReadyAddresses {
			ed.addrs = append(ed.addrs, endpointAddr{ip: a.IP, ref: a.TargetRef, field: fmt.Sprintf("subsets[%d].notReadyAddresses[%d]", i, j), portsN: i})
		}
		for _, p := range ss.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			ed.ports = append(ed.ports, endpointPort{group: i, name: p.Name, port: p.Port})
		}
	}
	l.endpoints = append(l.endpoints, ed)
}

func loadEndpointSlice(l *loader, d *doc) {
	e, ok := decodeKube[discoveryv1.EndpointSlice](d)
	if !ok {
		return
	}
	svc := e.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		l.notice(d.src, d.kind, d.name, fmt.Sprintf("skipped: no label %s, so it belongs to no Service (Istio ignores it too)", discoveryv1.LabelServiceName))
		return
	}
	switch e.AddressType {
	case discoveryv1.AddressTypeIPv4:
	case discoveryv1.AddressTypeFQDN:
		// endpointslice.go: "TODO support FQDN endpointslice", return.
		l.notice(d.src, d.kind, d.name, "skipped: addressType FQDN, which Istio ignores (endpointslice.go updateEndpointCacheForSlice)")
		return
	default:
		d.rep("addressType", fmt.Sprintf("%q is not supported by meshtls (the run's network is IPv4; allowed: IPv4, FQDN)", e.AddressType))
		return
	}
	ed := &endpointsDoc{src: d.src, kind: d.kind, name: d.name, ns: d.meta.Namespace, svc: svc}
	for i, ep := range e.Endpoints {
		for j, a := range ep.Addresses {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			ed.addrs = append(ed.addrs, endpointAddr{ip: a, ref: ep.TargetRef, ready: ready, field: fmt.Sprintf("endpoints[%d].addresses[%d]", i, j)})
		}
	}
	for _, p := range e.Ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		ep := endpointPort{}
		if p.Name != nil {
			ep.name = *p.Name
		}
		if p.Port != nil {
			ep.port = *p.Port
		}
		ed.ports = append(ed.ports, ep)
	}
	l.endpoints = append(l.endpoints, ed)
}

// resolveEndpoints gives each selector-less Service the endpoints of its
// EndpointSlices, or, when it has none, of its Endpoints (the mirrored
// copy); everything else is skipped with a notice saying why.
func (l *loader) resolveEndpoints() {
	m := l.m
	hasSlice := map[string]bool{}
	for _, e := range l.endpoints {
		if e.kind == "EndpointSlice" {
			hasSlice[e.ns+"/"+e.svc] = true
		}
	}
	for _, s := range m.Services {
		s.Manual = !s.Implied && len(s.Selector) == 0 && s.ExternalName == ""
	}
	for _, e := range l.endpoints {
		s, ok := m.idx().byName[e.ns+"/"+e.svc]
		switch {
		case !ok:
			l.notice(e.src, e.kind, e.name, fmt.Sprintf("skipped: no Service %s/%s in the bundle, so Istio builds no endpoints from it", e.ns, e.svc))
			continue
		case s.ExternalName != "":
			l.notice(e.src, e.kind, e.name, fmt.Sprintf("skipped: Service %s/%s is type ExternalName, an alias with no endpoints of its own", e.ns, e.svc))
			continue
		case !s.Manual:
			l.notice(e.src, e.kind, e.name, fmt.Sprintf("skipped: derived from the selector of Service %s/%s (meshtls selects its endpoints from the pods in the bundle)", e.ns, e.svc))
			continue
		case e.kind == "Endpoints" && hasSlice[e.ns+"/"+e.svc]:
			l.notice(e.src, e.kind, e.name, "skipped: the bundle has EndpointSlices for this Service, and Istio reads those (the mirrored copy of these Endpoints)")
			continue
		}
		l.addManualEndpoints(s, e)
	}
	for _, s := range m.Services {
		if !s.Manual {
			continue
		}
		// The target port of a selector-less Service is the endpoints'
		// (Kubernetes ignores spec.ports[].targetPort without a selector).
		for i := range s.Ports {
			sp := &s.Ports[i]
			sp.TargetPort = sp.Port
			for _, ep := range s.ManualEndpoints {
				if p, ok := ep.Ports[sp.Name]; ok {
					sp.TargetPort = p
					break
				}
			}
		}
	}
	m.index.Store(nil) // Endpoints of manual Services changed
}

func (l *loader) addManualEndpoints(s *Service, e *endpointsDoc) {
	rep := func(field, msg string) { l.add(e.src, e.kind, e.name, field, msg) }
	for _, a := range e.addrs {
		if !a.ready {
			// Istio sends it as UNHEALTHY (endpointHealthStatus), and
			// Envoy picks no unhealthy endpoint.
			l.notice(e.src, e.kind, e.name, fmt.Sprintf("%s: %s is not ready: Istio sends it as an unhealthy endpoint no proxy picks; meshtls leaves it out", a.field, a.ip))
			continue
		}
		ip, err := netip.ParseAddr(a.ip)
		if err != nil || !ip.Is4() {
			rep(a.field, fmt.Sprintf("%q is not an IPv4 address", a.ip))
			continue
		}
		ep := ServiceEndpoint{Addr: ip, Ports: map[string]uint32{}}
		for _, p := range e.ports {
			if p.group == a.portsN && p.port > 0 && p.port <= 65535 {
				ep.Ports[p.name] = uint32(p.port)
			}
		}
		if a.ref != nil && a.ref.Kind == "Pod" {
			ns := a.ref.Namespace
			if ns == "" {
				ns = e.ns
			}
			w, ok := l.m.Workload(ns + "/" + a.ref.Name)
			if !ok || w.External {
				rep(a.field+".targetRef", fmt.Sprintf("names pod %s/%s, which is not a workload of the bundle: add it (a Workload, Pod or Deployment of that name) or remove the address", ns, a.ref.Name))
				continue
			}
			ep.Pod = w
		} else {
			for _, w := range l.m.Workloads {
				if slices.Contains(w.Addresses, ip) {
					ep.Answer = w
					break
				}
			}
			if ep.Answer == nil {
				rep(a.field, fmt.Sprintf("%s is outside the run's network and no workload answers it: add a Workload with external: true and addresses: [%s] to stand in for the server there, or a targetRef to a pod of the bundle (meshtls sends nothing outside its own network)", ip, ip))
				continue
			}
		}
		s.ManualEndpoints = append(s.ManualEndpoints, ep)
	}
}

// manualPods are the pods of the bundle a selector-less Service's
// endpoints name (Endpoints uses them as a selector's pods).
func manualPods(s *Service) []*Workload {
	var out []*Workload
	for _, ep := range s.ManualEndpoints {
		if ep.Pod != nil && !slices.Contains(out, ep.Pod) {
			out = append(out, ep.Pod)
		}
	}
	return out
}

// ExternalNameTarget follows a Service's externalName through other
// ExternalName Services of the bundle to the host it aliases; "" for a
// Service that is not ExternalName, or a loop (Kubernetes DNS answers
// NXDOMAIN; Istio drops it). ExternalNames are not namespaced: the first
// Service with that hostname is followed.
// Source: pilot/pkg/model/push_context.go (resolveServiceAliases).
func (m *Mesh) ExternalNameTarget(s *Service) string {
	seen := map[string]bool{s.Hostname(): true}
	h := s.ExternalName
	for h != "" {
		next, ok := m.serviceByFQDN(h)
		if !ok || next.ExternalName == "" {
			return h
		}
		if seen[h] {
			return ""
		}
		seen[h] = true
		h = next.ExternalName
	}
	return ""
}

// serviceByFQDN finds a Service by its full hostname only.
func (m *Mesh) serviceByFQDN(h string) (*Service, bool) {
	if !strings.HasSuffix(h, "."+DomainSuffix) {
		return nil, false
	}
	s, ok := m.ServiceByHost(h, "")
	return s, ok && s.Hostname() == h
}

// Aliases are the ExternalName Services visible from ns that resolve to
// host: Istio adds their names to host's routes (HTTP virtual host
// domains, TLS SNI matches) and builds nothing for them of their own.
// Sources: pilot/pkg/model/push_context.go (resolveServiceAliases),
// pilot/pkg/networking/core/httproute.go (generateVirtualHostDomains),
// tls.go (buildSidecarOutboundTLSFilterChainOpts), cluster.go and
// listener.go (Alias services get neither). Deviation: istiod also drops
// an alias whose name the Sidecar egress hosts that imported the aliased
// service do not match (sidecar.go matchingAliasService); every visible
// alias is kept here, which differs only under a Sidecar importing exact
// hostnames (docs/istio-behaviour.md).
func (m *Mesh) Aliases(host, ns string) []*Service {
	var out []*Service
	for _, s := range m.Services {
		if s.ExternalName != "" && s.VisibleFrom(ns) && m.ExternalNameTarget(s) == host {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Service) int {
		return strings.Compare(a.Namespace+"/"+a.Hostname(), b.Namespace+"/"+b.Hostname())
	})
	return out
}

// validateExternalName refuses an external name the run cannot resolve:
// there is no DNS outside the bundle, so the name must be a Workload's
// hostname or a Service of the bundle.
func (l *loader) validateExternalName(s *Service, rep func(field, msg string)) {
	h := l.m.ExternalNameTarget(s)
	if h == "" {
		rep("spec.externalName", fmt.Sprintf("%q loops through ExternalName Services back to itself (Kubernetes DNS answers NXDOMAIN; Istio ignores it): point it at a host", s.ExternalName))
		return
	}
	if _, ok := l.m.serviceByFQDN(h); ok {
		return
	}
	for _, w := range l.m.Workloads {
		if slices.Contains(w.Hostnames, h) {
			return
		}
	}
	rep("spec.externalName", fmt.Sprintf("%q resolves outside the bundle: no Workload has it in spec.hostnames and no Service of the bundle has that name; add a Workload with external: true and hostnames: [%s] to stand in for it (meshtls sends nothing outside its own network)", h, h))
}
