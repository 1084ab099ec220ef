package mesh

import (
	"slices"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	security "istio.io/client-go/pkg/apis/security/v1"
)

// The questions the translator asks. Signatures are the contract between
// mesh and xds; bodies belong to the mesh package owner.

// MTLSMode is an effective PeerAuthentication mode.
type MTLSMode string

const (
	ModeStrict     MTLSMode = "STRICT"
	ModePermissive MTLSMode = "PERMISSIVE"
	ModeDisable    MTLSMode = "DISABLE"
)

// Protocol is Istio's protocol class for a port.
type Protocol string

const (
	ProtoHTTP  Protocol = "HTTP"
	ProtoHTTP2 Protocol = "HTTP2"
	ProtoGRPC  Protocol = "GRPC"
	ProtoHTTPS Protocol = "HTTPS"
	ProtoTLS   Protocol = "TLS"
	ProtoTCP   Protocol = "TCP"
	ProtoUDP   Protocol = "UDP"
	ProtoMongo Protocol = "Mongo"
	ProtoRedis Protocol = "Redis"
	ProtoMySQL Protocol = "MySQL"
	ProtoAuto  Protocol = "" // not declared: auto-detection

	// Istio has two more HTTP-class instances (pkg/config/protocol/instance.go).
	ProtoGRPCWeb   Protocol = "GRPC-Web"
	ProtoHTTPProxy Protocol = "HTTP_PROXY"
)

// wellKnownTCPPorts are treated as TCP when the name gives no protocol.
// Source: pkg/config/kube/conversion.go (wellKnownPorts).
var wellKnownTCPPorts = map[uint32]bool{25: true, 53: true, 3306: true, 27017: true}

// parseProtocol mirrors protocol.Parse (pkg/config/protocol/instance.go):
// case-insensitive, ProtoAuto for anything unknown.
func parseProtocol(s string) Protocol {
	switch strings.ToLower(s) {
	case "tcp":
		return ProtoTCP
	case "udp":
		return ProtoUDP
	case "grpc":
		return ProtoGRPC
	case "grpc-web":
		return ProtoGRPCWeb
	case "http":
		return ProtoHTTP
	case "http_proxy":
		return ProtoHTTPProxy
	case "http2":
		return ProtoHTTP2
	case "https":
		return ProtoHTTPS
	case "tls":
		return ProtoTLS
	case "mongo":
		return ProtoMongo
	case "redis":
		return ProtoRedis
	case "mysql":
		return ProtoMySQL
	}
	return ProtoAuto
}

// PortProtocol selects the protocol as Istio does: appProtocol wins, then the
// port name prefix before the first '-', case-insensitive; else auto, except
// ports 25, 53, 3306, 27017 which are TCP.
// Source: pkg/config/kube/conversion.go (ConvertProtocol). An empty
// appProtocol counts as unset (Kubernetes has a nil pointer there).
func PortProtocol(name, appProtocol string, port uint32) Protocol {
	if appProtocol != "" {
		name = appProtocol
		// Kubernetes' standard appProtocol values, handled only for appProtocol.
		switch name {
		case "kubernetes.io/h2c":
			return ProtoHTTP2
		case "kubernetes.io/ws":
			return ProtoHTTP
		case "kubernetes.io/wss":
			return ProtoHTTPS
		}
	}
	// grpc-web contains the separator, so it is checked before splitting.
	if strings.HasPrefix(strings.ToLower(name), "grpc-web") {
		return ProtoGRPCWeb
	}
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	p := parseProtocol(name)
	if p == ProtoAuto && wellKnownTCPPorts[port] {
		return ProtoTCP
	}
	return p
}

// IsHTTP: HTTP, HTTP2, GRPC (HTTP class). IsTCP: TCP class (TCP, HTTPS, TLS, Mongo, Redis, MySQL).
// Source: pkg/config/protocol/instance.go (IsHTTP, IsTCP).
func (p Protocol) IsHTTP() bool {
	switch p {
	case ProtoHTTP, ProtoHTTP2, ProtoGRPC, ProtoGRPCWeb, ProtoHTTPProxy:
		return true
	}
	return false
}

func (p Protocol) IsTCP() bool {
	switch p {
	case ProtoTCP, ProtoHTTPS, ProtoTLS, ProtoMongo, ProtoRedis, ProtoMySQL:
		return true
	}
	return false
}

// IsTLS reports HTTPS and TLS (pkg/config/protocol/instance.go IsTLS).
func (p Protocol) IsTLS() bool { return p == ProtoHTTPS || p == ProtoTLS }

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

func paMode(mt *securityapi.PeerAuthentication_MutualTLS) (MTLSMode, bool) {
	switch mt.GetMode() {
	case securityapi.PeerAuthentication_MutualTLS_STRICT:
		return ModeStrict, true
	case securityapi.PeerAuthentication_MutualTLS_PERMISSIVE:
		return ModePermissive, true
	case securityapi.PeerAuthentication_MutualTLS_DISABLE:
		return ModeDisable, true
	}
	return "", false // nil or UNSET: inherit from the parent
}

func hasSelector(pa *security.PeerAuthentication) bool {
	return len(pa.Spec.GetSelector().GetMatchLabels()) > 0
}

// meshAndNamespacePolicies picks the mesh-level (root namespace, no selector)
// and namespace-level (ns, no selector) policies. When several exist at one
// level Istio keeps the oldest; the mesh holds them in Istio's order
// (order.go), so that is the first.
// Source: pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication).
func (m *Mesh) meshAndNamespacePolicies(ns string) (meshPA, nsPA *security.PeerAuthentication) {
	for _, pa := range m.PeerAuthentications {
		if hasSelector(pa) {
			continue
		}
		if pa.Namespace == RootNamespace {
			if meshPA == nil {
				meshPA = pa
			}
		} else if pa.Namespace == ns && nsPA == nil {
			nsPA = pa
		}
	}
	return meshPA, nsPA
}

// EffectiveMTLS is the PeerAuthentication mode for a workload's port:
// port-level > workload selector > namespace > mesh (root ns) > PERMISSIVE; UNSET inherits.
// port is the workload (container) port, as portLevelMtls keys are.
// Source: pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication)
// and pilot/pkg/model/authentication.go (getConfigsForWorkload). Selector
// policies in the root namespace are dropped by ComposePeerAuthentication
// ("Workload-level policy, aka the one with selector and not in root
// namespace"), so they never apply, not even to root-namespace workloads.
func (m *Mesh) EffectiveMTLS(w *Workload, port uint32) MTLSMode {
	mode := m.NamespaceMTLS(w.Namespace)
	var wl *security.PeerAuthentication
	for _, pa := range m.PeerAuthentications {
		if pa.Namespace == w.Namespace && pa.Namespace != RootNamespace && hasSelector(pa) &&
			labelsMatch(pa.Spec.GetSelector().GetMatchLabels(), w.Labels) {
			wl = pa // the oldest (Istio's order, order.go)
			break
		}
	}
	if wl == nil {
		return mode
	}
	if md, ok := paMode(wl.Spec.GetMtls()); ok {
		mode = md
	}
	if pm, ok := wl.Spec.GetPortLevelMtls()[port]; ok {
		if md, ok := paMode(pm); ok {
			mode = md
		}
	}
	return mode
}

// NamespaceMTLS is the mode from mesh- and namespace-level policy only, the
// one Istio infers for a whole service under auto mTLS.
// Source: pilot/pkg/model/authentication.go (GetNamespaceMutualTLSMode) and
// pilot/pkg/model/push_context.go (BestEffortInferServiceMTLSMode).
func (m *Mesh) NamespaceMTLS(ns string) MTLSMode {
	mode := ModePermissive
	meshPA, nsPA := m.meshAndNamespacePolicies(ns)
	if meshPA != nil {
		if md, ok := paMode(meshPA.Spec.GetMtls()); ok {
			mode = md
		}
	}
	if nsPA != nil {
		if md, ok := paMode(nsPA.Spec.GetMtls()); ok {
			mode = md
		}
	}
	return mode
}

// Services lists all services (given and implied); ServiceByHost finds one by
// FQDN or short forms resolved from clientNS ("b", "b.default", "b.default.svc").
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

// Endpoints are the workloads a service selects (same namespace, labels match).
// A Service without a selector selects nothing (Kubernetes leaves its
// Endpoints to be managed by hand). External workloads are not in the
// registry, so no Service selects them.
func (m *Mesh) Endpoints(s *Service) []*Workload {
	if eps, ok := m.idx().eps[s]; ok {
		return slices.Clip(eps) // shared: an append must not write into the index
	}
	return m.scanEndpoints(s)
}

func (m *Mesh) scanEndpoints(s *Service) []*Workload {
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
// clientNS. Empty means "*" (meshConfig defaultExportTo). "." is its own
// namespace, "~" nobody. Source: pkg/config/visibility/visibility.go and
// pilot/pkg/model/push_context.go.
func exportedTo(ns string, exportTo []string, clientNS string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if ns == clientNS {
				return true
			}
		case "~":
		default:
			if e == clientNS {
				return true
			}
		}
	}
	return false
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

// MeshGateway is the reserved gateway name for the sidecars.
const MeshGateway = "mesh"

// ResolveGatewayRef turns a VirtualService gateways entry (top-level or in
// a match) into "ns/name" ("mesh" stays): "ns/name" is absolute, "./name"
// and "name" are relative to the VirtualService's namespace, and the legacy
// "name.ns[.svc.cluster.local]" form names ns/name.
// Source: pilot/pkg/model/config.go (resolveGatewayName), applied to every
// gateways list by pilot/pkg/model/virtualservice.go
// (ResolveVirtualServiceShortnames).
func ResolveGatewayRef(ref, vsNS string) string {
	if ref == MeshGateway {
		return ref
	}
	if ns, name, ok := strings.Cut(ref, "/"); ok {
		if ns == "." {
			return vsNS + "/" + name
		}
		return ref
	}
	if i := strings.IndexByte(ref, '.'); i >= 0 {
		rest := ref[i+1:]
		if j := strings.IndexByte(rest, '.'); j >= 0 {
			rest = rest[:j]
		}
		return rest + "/" + ref[:i]
	}
	return vsNS + "/" + ref
}

// MatchGateways reports whether a route match's gateways list lets it apply
// on gateway ("ns/name" or "mesh"): an empty list applies everywhere the
// VirtualService is bound; entries resolve like the top-level list.
func MatchGateways(gws []string, vsNS, gateway string) bool {
	if len(gws) == 0 {
		return true
	}
	for _, g := range gws {
		if ResolveGatewayRef(g, vsNS) == gateway {
			return true
		}
	}
	return false
}

// BoundGateways lists the "ns/name" gateways (or "mesh") a VirtualService is
// bound to; no gateways means "mesh".
func BoundGateways(vs *networking.VirtualService) []string {
	gws := vs.Spec.GetGateways()
	if len(gws) == 0 {
		return []string{MeshGateway}
	}
	out := make([]string, 0, len(gws))
	for _, g := range gws {
		out = append(out, ResolveGatewayRef(g, vs.Namespace))
	}
	return out
}

// VirtualServicesFor lists VirtualServices bound to gateway ("ns/name"), or
// to the sidecars when gateway is "mesh" (a VS with no gateways is bound to
// "mesh"), visible from clientNS.
func (m *Mesh) VirtualServicesFor(gateway, clientNS string) []*networking.VirtualService {
	var out []*networking.VirtualService
	for _, vs := range m.VirtualServices {
		if !exportedTo(vs.Namespace, vs.Spec.GetExportTo(), clientNS) {
			continue
		}
		if slices.Contains(BoundGateways(vs), gateway) {
			out = append(out, vs)
		}
	}
	return out
}

// ServiceEntryHosts lists the ServiceEntries visible from clientNS.
func (m *Mesh) ServiceEntriesFor(clientNS string) []*networking.ServiceEntry {
	var out []*networking.ServiceEntry
	for _, se := range m.ServiceEntries {
		if exportedTo(se.Namespace, se.Spec.GetExportTo(), clientNS) {
			out = append(out, se)
		}
	}
	return out
}
