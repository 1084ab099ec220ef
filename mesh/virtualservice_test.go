package mesh

import (
	"slices"
	"testing"

	networking "istio.io/client-go/pkg/apis/networking/v1"
)

func TestGatewaysAndVirtualServices(t *testing.T) {
	y := `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: gw, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {gateway: true}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: other-gw, namespace: istio-system, labels: {istio: egress}}
spec: {gateway: true}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g1, namespace: apps}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}
  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, credentialName: c}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g2, namespace: istio-system}
spec:
  selector: {istio: egress}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-only, namespace: apps}
spec: {hosts: [a]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rel, namespace: apps}
spec: {hosts: [a], gateways: [g1, mesh]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: abs, namespace: other}
spec: {hosts: [a], gateways: [apps/g1]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: other}
spec: {hosts: [a], exportTo: ['.']}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pub, namespace: other}
spec: {hosts: [ext.example.com]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: priv, namespace: other}
spec: {hosts: [ext2.example.com], exportTo: ['.']}
`
	m := mustParse(t, y)
	gw, _ := m.Workload("istio-system/gw")
	if got := m.GatewayServers(gw); len(got) != 2 || got[0].Gateway.Name != "g1" || got[1].Server.GetPort().GetNumber() != 443 {
		t.Errorf("GatewayServers(gw) = %v", got)
	}
	for _, tc := range []struct {
		gateway, client string
		want            []string
	}{
		{"mesh", "apps", []string{"apps/mesh-only", "apps/rel"}},
		// Istio's order (no timestamps: by name), not file order.
		{"mesh", "other", []string{"apps/mesh-only", "other/private", "apps/rel"}},
		{"apps/g1", "apps", []string{"other/abs", "apps/rel"}},
		{"istio-system/g2", "istio-system", nil},
	} {
		if got := vsNames(m.VirtualServicesFor(tc.gateway, tc.client)); !slices.Equal(got, tc.want) {
			t.Errorf("VirtualServicesFor(%q, %q) = %v, want %v", tc.gateway, tc.client, got, tc.want)
		}
	}
	if got := m.ServiceEntriesFor("apps"); len(got) != 1 || got[0].Name != "pub" {
		t.Errorf("ServiceEntriesFor(apps) = %v", got)
	}
	if got := m.ServiceEntriesFor("other"); len(got) != 2 {
		t.Errorf("ServiceEntriesFor(other) = %v", got)
	}
	for ref, want := range map[string]string{"mesh": "mesh", "g": "ns/g", "x/g": "x/g", "g.x.svc.cluster.local": "x/g", "g.x": "x/g", "./g": "ns/g"} {
		if got := ResolveGatewayRef(ref, "ns"); got != want {
			t.Errorf("ResolveGatewayRef(%q) = %q, want %q", ref, got, want)
		}
	}
}

// Match gateways resolve like the top-level list: a short name names a
// Gateway in the VirtualService's namespace (model/virtualservice.go
// ResolveVirtualServiceShortnames).
func TestMatchGateways(t *testing.T) {
	for _, tc := range []struct {
		gws     []string
		gateway string
		want    bool
	}{
		{nil, "istio-system/gw", true},
		{[]string{"gw"}, "apps/gw", true},
		{[]string{"gw"}, "istio-system/gw", false},
		{[]string{"./gw"}, "apps/gw", true},
		{[]string{"istio-system/gw"}, "istio-system/gw", true},
		{[]string{"gw.istio-system.svc.cluster.local"}, "istio-system/gw", true},
		{[]string{"mesh"}, "mesh", true},
		{[]string{"mesh"}, "apps/gw", false},
	} {
		if got := MatchGateways(tc.gws, "apps", tc.gateway); got != tc.want {
			t.Errorf("MatchGateways(%v, apps, %q) = %v, want %v", tc.gws, tc.gateway, got, tc.want)
		}
	}
}

func vsNames(vss []*networking.VirtualService) []string {
	var out []string
	for _, vs := range vss {
		out = append(out, vs.Namespace+"/"+vs.Name)
	}
	return out
}
