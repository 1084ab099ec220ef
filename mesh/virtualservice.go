package mesh

import (
	"slices"

	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// VirtualService binding: which gateways (or the sidecars, "mesh") a
// VirtualService applies to (pilot/pkg/model/virtualservice.go).

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
