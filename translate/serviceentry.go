package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/mesh"
)

// tlsModeLabel is the label an endpoint carries when it has a sidecar
// (pkg/model/proxy.go, label.SecurityTlsMode).
const tlsModeLabel = "security.istio.io/tlsMode"

// serviceEntryTargets turns the ServiceEntries visible from ns into
// targets, one per host and port (pilot/pkg/serviceregistry/serviceentry/conversion.go,
// convertServices / convertEndpoint).
func (b *builder) serviceEntryTargets(ns string) []*target {
	var out []*target
	for _, se := range b.m.ServiceEntriesFor(ns) {
		out = append(out, b.serviceEntry(se)...)
	}
	return out
}

func seName(se *networking.ServiceEntry) string {
	return fmt.Sprintf("ServiceEntry %s/%s", se.Namespace, se.Name)
}

func (b *builder) serviceEntry(se *networking.ServiceEntry) []*target {
	res := seName(se)
	spec := &se.Spec
	if spec.GetSubjectAltNames() != nil && len(spec.GetSubjectAltNames()) == 0 {
		spec.SubjectAltNames = nil
	}
	var resolve resolution
	switch spec.GetResolution() {
	case networkingapi.ServiceEntry_NONE:
		resolve = resolveNone
	case networkingapi.ServiceEntry_STATIC:
		resolve = resolveStatic
	case networkingapi.ServiceEntry_DNS, networkingapi.ServiceEntry_DNS_ROUND_ROBIN:
		resolve = resolveDNS
	default:
		b.unsupported(res, "spec.resolution "+spec.GetResolution().String())
		return nil
	}
	var prefixes []netip.Prefix
	for i, a := range spec.GetAddresses() {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, err2 := netip.ParseAddr(a)
			if err2 != nil {
				b.fail(fmt.Errorf("%s: spec.addresses[%d] %q is not an IP or CIDR", res, i, a))
				continue
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		prefixes = append(prefixes, p)
	}
	var out []*target
	for _, host := range spec.GetHosts() {
		for _, port := range spec.GetPorts() {
			t := &target{
				host:     host,
				name:     host,
				ns:       se.Namespace,
				port:     port.GetNumber(),
				portName: port.GetName(),
				proto:    mesh.PortProtocol(port.GetProtocol(), "", port.GetNumber()),
				se:       se,
				// MESH_EXTERNAL services never get auto mTLS
				// (cluster_builder.go: mesh-external → plaintext).
				external: spec.GetLocation() == networkingapi.ServiceEntry_MESH_EXTERNAL,
				resolve:  resolve,
				resource: res,
				sans:     spec.GetSubjectAltNames(),
				prefixes: prefixes,
			}
			targetPort := port.GetTargetPort()
			if targetPort == 0 {
				targetPort = port.GetNumber()
			}
			switch {
			case resolve == resolveNone:
				// ORIGINAL_DST: no endpoints.
			case spec.GetWorkloadSelector() != nil:
				// Workloads of the bundle selected like WorkloadEntries/pods
				// in the ServiceEntry's namespace (serviceentry/controller.go).
				for _, w := range b.m.Workloads {
					if w.Namespace != se.Namespace || !subsetMatches(spec.GetWorkloadSelector().GetLabels(), w.Labels) || w.Gateway {
						continue
					}
					if a, ok := b.addrOf(w); ok {
						t.eps = append(t.eps, endpointRef{w: w, addr: a.String(), port: targetPort, labels: w.Labels})
					}
				}
			case len(spec.GetEndpoints()) > 0:
				for _, e := range spec.GetEndpoints() {
					p := targetPort
					if ep, ok := e.GetPorts()[port.GetName()]; ok {
						p = ep
					}
					if e.GetAddress() == "" || strings.HasPrefix(e.GetAddress(), "unix://") {
						b.unsupported(res, "spec.endpoints[].address "+fmt.Sprintf("%q", e.GetAddress()))
						continue
					}
					ref := endpointRef{w: b.workloadAt(e.GetAddress()), addr: e.GetAddress(), port: p, labels: e.GetLabels(), byLabels: true}
					if sa := e.GetServiceAccount(); sa != "" {
						ref.sa = mesh.SPIFFE(se.Namespace, sa)
					}
					t.eps = append(t.eps, ref)
				}
			case resolve == resolveDNS:
				// DNS without endpoints: the hosts themselves (conversion.go).
				if strings.Contains(host, "*") {
					b.fail(fmt.Errorf("%s: resolution DNS needs endpoints for wildcard host %q (Istio rejects it too)", res, host))
					continue
				}
				t.eps = append(t.eps, endpointRef{w: b.workloadAt(host), addr: host, port: targetPort, byLabels: true})
			}
			if len(t.sans) == 0 {
				// No subjectAltNames: the endpoints' identities, as for
				// Services (pilot/pkg/model/service.go, ServiceAccounts).
				for _, e := range t.eps {
					if id := e.identity(); id != "" && !slices.Contains(t.sans, id) {
						t.sans = append(t.sans, id)
					}
				}
				slices.Sort(t.sans)
			}
			out = append(out, t)
		}
	}
	return out
}

// workloadAt finds the bundle workload behind an endpoint address: its IP,
// one of its hostnames, or its service FQDN. nil when none.
func (b *builder) workloadAt(addr string) *mesh.Workload {
	ip, ipErr := netip.ParseAddr(addr)
	for _, w := range b.m.Workloads {
		if ipErr == nil {
			if a, ok := b.env.Addrs[w.ID()]; (ok && a == ip) || slices.Contains(w.Addresses, ip) {
				return w
			}
			continue
		}
		if slices.Contains(w.Hostnames, addr) {
			return w
		}
	}
	if ipErr != nil {
		if s, ok := b.m.ServiceByHost(addr, ""); ok && addr == s.Hostname() {
			if eps := b.m.Endpoints(s); len(eps) > 0 {
				return eps[0]
			}
		}
	}
	return nil
}
