package mesh

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// GatewayServer is one server of a Gateway resource that selects a gateway workload.
type GatewayServer struct {
	Gateway *networking.Gateway
	Server  *networkingapi.Server
}

// GatewayServers lists the servers a gateway workload serves: those of
// every Gateway whose selector matches its labels (any namespace, as Istio
// by default: PILOT_SCOPE_GATEWAY_TO_NAMESPACE is false; an empty selector
// selects every gateway workload), oldest Gateway first, minus the servers
// Istio drops because an older one already claims their port (see
// gatewayServers).
// Source: pilot/pkg/model/push_context.go (initGateways, mergeGateways).
func (m *Mesh) GatewayServers(gw *Workload) []GatewayServer {
	kept, _ := m.gatewayServers(gw)
	return kept
}

// DisableGatewayPortTranslationLabel on a Service keeps a Gateway server's
// port untranslated for that Service (Istio's workaround for Knative).
// Source: pilot/pkg/model/gateway.go (DisableGatewayPortTranslationLabel).
const DisableGatewayPortTranslationLabel = "experimental.istio.io/disable-gateway-port-translation"

// GatewayPort is the port a gateway workload listens on for a Gateway
// server's port. When a Service selecting the workload has that port, it is
// the port's targetPort: Istio's gateway charts expose 80 and 443 and
// listen on 8080 and 8443, clients reach the gateway through the Service,
// and nothing listens on 80 in the pod. Otherwise (no Service, or not one
// of its ports) the server's port itself. The Services are taken oldest
// first, then by hostname, and the first with the port decides; a Service
// labelled DisableGatewayPortTranslationLabel is skipped. svc is the
// Service that translated the port, nil when it is kept.
// Source: pilot/pkg/model/gateway.go (mergeGateways, resolvePorts with a
// Gateway's label selector: "bind to the port as-is if there is no
// matching ServiceInstance"); pilot/pkg/model/context.go (SetServiceTargets:
// the proxy's Services by creation time, then hostname);
// pilot/pkg/networking/core/gateway.go (buildGatewayListeners: "mergeGateways
// will already translate Service port to targetPort").
func (m *Mesh) GatewayPort(gw *Workload, port uint32) (listen uint32, svc *Service) {
	var svcs []*Service
	for _, s := range m.Services {
		if !s.NoGatewayPortTranslation && slices.Contains(m.Endpoints(s), gw) {
			svcs = append(svcs, s)
		}
	}
	slices.SortStableFunc(svcs, func(a, b *Service) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Hostname(), b.Hostname()))
	})
	for _, s := range svcs {
		for _, p := range s.Ports {
			if p.Port == port {
				return p.TargetPort, s
			}
		}
	}
	return port, nil
}

// droppedServer is a server Istio ignores, and the older one it lost to.
type droppedServer struct {
	GatewayServer
	winner GatewayServer
	hosts  []string // the hosts both claim; empty for a protocol conflict
}

// gatewayServers merges the selected Gateways' servers as Istio's
// mergeGateways does (pilot/pkg/model/gateway.go), with the two rules that
// drop a server: a server with tls settings whose hosts (as written, after
// "./" and "*/" are resolved) repeat a host an earlier server with tls
// settings has on the same port; and a server on a port whose first server
// is plaintext when the protocols cannot share a listener (both must be
// HTTP-class, canMergeProtocols). A port is the one the gateway listens on
// (GatewayPort). Servers come in Istio's order: Gateways oldest first (the
// mesh's order), servers as listed.
func (m *Mesh) gatewayServers(gw *Workload) (kept []GatewayServer, dropped []droppedServer) {
	type claim struct {
		by    GatewayServer
		hosts map[string]bool
	}
	tlsHosts := map[uint32][]claim{}        // port -> tls servers accepted so far
	plaintext := map[uint32]GatewayServer{} // port -> its first server, if plaintext
	seenPort := map[uint32]bool{}
	for _, g := range m.Gateways {
		if !labelsMatch(g.Spec.GetSelector(), gw.Labels) {
			continue
		}
		for _, s := range g.Spec.GetServers() {
			gs := GatewayServer{Gateway: g, Server: s}
			// Servers share a listener by the port the gateway listens on.
			port, _ := m.GatewayPort(gw, s.GetPort().GetNumber())
			if s.GetTls() != nil {
				hosts := serverHosts(s, g.Namespace)
				var dup []string
				var winner GatewayServer
				for _, c := range tlsHosts[port] {
					for _, h := range hosts {
						if c.hosts[h] && !slices.Contains(dup, h) {
							dup = append(dup, h)
							if winner.Server == nil {
								winner = c.by
							}
						}
					}
				}
				if len(dup) > 0 {
					dropped = append(dropped, droppedServer{GatewayServer: gs, winner: winner, hosts: dup})
					continue
				}
				c := claim{by: gs, hosts: map[string]bool{}}
				for _, h := range hosts {
					c.hosts[h] = true
				}
				tlsHosts[port] = append(tlsHosts[port], c)
			}
			proto := parseProtocol(s.GetPort().GetProtocol())
			if first, ok := plaintext[port]; ok {
				cur := parseProtocol(first.Server.GetPort().GetProtocol())
				if !((cur.IsHTTP() || cur == proto) && proto.IsHTTP()) {
					dropped = append(dropped, droppedServer{GatewayServer: gs, winner: first})
					continue
				}
			} else if !seenPort[port] && !isTLSServer(s, proto) {
				plaintext[port] = gs
			}
			seenPort[port] = true
			kept = append(kept, gs)
		}
	}
	return kept, dropped
}

// isTLSServer: the server's protocol is TLS-class and it has tls settings
// (pkg/config/gateway/gateway.go IsTLSServer).
func isTLSServer(s *networkingapi.Server, p Protocol) bool {
	return s.GetTls() != nil && p.IsTLS()
}

// serverHosts are a server's hosts as Istio compares them: "./h" becomes
// "ns/h", "*/h" becomes "h" (gateway.go sanitizeServerHostNamespace).
func serverHosts(s *networkingapi.Server, ns string) []string {
	var out []string
	for _, h := range s.GetHosts() {
		if before, after, ok := strings.Cut(h, "/"); ok {
			switch before {
			case ".":
				h = ns + "/" + after
			case "*":
				h = after
			}
		}
		out = append(out, h)
	}
	return out
}

// gatewayWarnings reports every server some gateway workload drops, once,
// worded like istioctl analyze's IST0145 (ConflictingGateways,
// pkg/config/analysis/analyzers/gateway/conflictinggateway.go).
func (l *loader) gatewayWarnings() {
	m := l.m
	seen := map[*networkingapi.Server]bool{}
	for _, w := range m.Workloads {
		if !w.Gateway {
			continue
		}
		_, dropped := m.gatewayServers(w)
		for _, d := range dropped {
			if seen[d.Server] {
				continue
			}
			seen[d.Server] = true
			g := d.Gateway
			key := "Gateway/" + g.Namespace + "/" + g.Name
			winner := d.winner.Gateway.Namespace + "/" + d.winner.Gateway.Name
			// The port as written, and the one listened on when a Service
			// translates it (the servers met there).
			port := fmt.Sprint(d.Server.GetPort().GetNumber())
			if listen, svc := m.GatewayPort(w, d.Server.GetPort().GetNumber()); svc != nil && listen != d.Server.GetPort().GetNumber() {
				port += fmt.Sprintf(", listened on as %d (targetPort of Service %s/%s)", listen, svc.Namespace, svc.Name)
			}
			var what string
			if len(d.hosts) > 0 {
				what = fmt.Sprintf("conflict with Gateway %s (port %s, hosts %s): Istio keeps the older server and ignores this one (istioctl analyze IST0145)",
					winner, port, strings.Join(d.hosts, ","))
			} else {
				what = fmt.Sprintf("port %s: protocol %s cannot share the port with the %s server of Gateway %s, which claimed it first; Istio ignores this server",
					port, d.Server.GetPort().GetProtocol(), d.winner.Server.GetPort().GetProtocol(), winner)
			}
			m.Warnings = append(m.Warnings, Problem{Source: m.Sources[key], Kind: "Gateway", Name: g.Namespace + "/" + g.Name,
				Field: fmt.Sprintf("spec.servers[%d]", slices.Index(g.Spec.GetServers(), d.Server)), Message: what})
		}
	}
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
