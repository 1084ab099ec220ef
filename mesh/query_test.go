package mesh

import (
	"slices"
	"testing"

	networking "istio.io/client-go/pkg/apis/networking/v1"
)

func mustParse(t *testing.T, y string) *Mesh {
	t.Helper()
	m, err := Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestPortProtocol(t *testing.T) {
	for _, tc := range []struct {
		name, app string
		port      uint32
		want      Protocol
		http, tcp bool
	}{
		{"http", "", 8080, ProtoHTTP, true, false},
		{"HTTP-web", "", 8080, ProtoHTTP, true, false},
		{"http2", "", 80, ProtoHTTP2, true, false},
		{"http_proxy", "", 80, ProtoHTTPProxy, true, false},
		{"grpc-api", "", 80, ProtoGRPC, true, false},
		{"grpc-web-x", "", 80, ProtoGRPCWeb, true, false},
		{"tcp-db", "", 9000, ProtoTCP, false, true},
		{"https", "", 8443, ProtoHTTPS, false, true},
		{"tls-x", "", 8443, ProtoTLS, false, true},
		{"mongo", "", 1, ProtoMongo, false, true},
		{"redis", "", 1, ProtoRedis, false, true},
		{"mysql", "", 1, ProtoMySQL, false, true},
		{"udp-dns", "", 53, ProtoUDP, false, false},
		{"web", "", 8080, ProtoAuto, false, false},
		{"", "", 8080, ProtoAuto, false, false},
		{"web", "", 3306, ProtoTCP, false, true},
		{"", "", 25, ProtoTCP, false, true},
		{"", "", 53, ProtoTCP, false, true},
		{"", "", 27017, ProtoTCP, false, true},
		{"http", "tcp", 8080, ProtoTCP, false, true},  // appProtocol wins
		{"tcp", "HTTP", 8080, ProtoHTTP, true, false}, // case-insensitive
		{"tcp", "kubernetes.io/h2c", 1, ProtoHTTP2, true, false},
		{"x", "kubernetes.io/wss", 1, ProtoHTTPS, false, true},
		{"http", "foo", 3306, ProtoTCP, false, true}, // unknown appProtocol, well-known port
	} {
		got := PortProtocol(tc.name, tc.app, tc.port)
		if got != tc.want || got.IsHTTP() != tc.http || got.IsTCP() != tc.tcp {
			t.Errorf("PortProtocol(%q,%q,%d) = %q (http %v tcp %v), want %q (http %v tcp %v)",
				tc.name, tc.app, tc.port, got, got.IsHTTP(), got.IsTCP(), tc.want, tc.http, tc.tcp)
		}
	}
}

func TestEffectiveMTLS(t *testing.T) {
	base := `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: ns, labels: {app: b}}
spec: {ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: r, namespace: istio-system, labels: {app: r}}
`
	pa := func(name, ns, body string) string {
		return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + body + "\n"
	}
	for _, tc := range []struct {
		name         string
		policies     string
		wl           string
		port         uint32
		want, nsWant MTLSMode
	}{
		{"none", "", "ns/b", 8080, ModePermissive, ModePermissive},
		{"mesh strict", pa("m", "istio-system", "{mtls: {mode: STRICT}}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"mesh unset", pa("m", "istio-system", "{mtls: {mode: UNSET}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"ns beats mesh", pa("m", "istio-system", "{mtls: {mode: STRICT}}") + pa("nsp", "ns", "{mtls: {mode: DISABLE}}"), "ns/b", 8080, ModeDisable, ModeDisable},
		{"ns unset inherits mesh", pa("m", "istio-system", "{mtls: {mode: STRICT}}") + pa("nsp", "ns", "{}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"other ns ignored", pa("nsp", "other", "{mtls: {mode: DISABLE}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"workload beats ns", pa("nsp", "ns", "{mtls: {mode: STRICT}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: PERMISSIVE}}"), "ns/b", 8080, ModePermissive, ModeStrict},
		{"workload not matching", pa("nsp", "ns", "{mtls: {mode: STRICT}}") + pa("w", "ns", "{selector: {matchLabels: {app: c}}, mtls: {mode: DISABLE}}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"port level", pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: DISABLE}}}"), "ns/b", 9000, ModeDisable, ModePermissive},
		{"port level other port", pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: DISABLE}}}"), "ns/b", 8080, ModeStrict, ModePermissive},
		{"port level unset inherits workload", pa("nsp", "ns", "{mtls: {mode: DISABLE}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: UNSET}}}"), "ns/b", 9000, ModeStrict, ModeDisable},
		{"workload unset inherits ns", pa("nsp", "ns", "{mtls: {mode: DISABLE}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, portLevelMtls: {9000: {mode: STRICT}}}"), "ns/b", 8080, ModeDisable, ModeDisable},
		{"first workload policy wins", pa("w1", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: DISABLE}}") + pa("w2", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}}"), "ns/b", 8080, ModeDisable, ModePermissive},
		{"root selector policy ignored", pa("w", "istio-system", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"root selector policy ignored in root", pa("w", "istio-system", "{selector: {matchLabels: {app: r}}, mtls: {mode: STRICT}}"), "istio-system/r", 8080, ModePermissive, ModePermissive},
		{"root ns workload mesh policy", pa("m", "istio-system", "{mtls: {mode: DISABLE}}"), "istio-system/r", 8080, ModeDisable, ModeDisable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, base+tc.policies)
			w, ok := m.Workload(tc.wl)
			if !ok {
				t.Fatalf("no workload %s", tc.wl)
			}
			if got := m.EffectiveMTLS(w, tc.port); got != tc.want {
				t.Errorf("EffectiveMTLS = %s, want %s", got, tc.want)
			}
			if got := m.NamespaceMTLS(w.Namespace); got != tc.nsWant {
				t.Errorf("NamespaceMTLS = %s, want %s", got, tc.nsWant)
			}
		})
	}
}

func TestServicesAndEndpoints(t *testing.T) {
	m, err := Load("testdata/basic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, ns, want string }{
		{"b", "default", "default/b"},
		{"b.default", "legacy", "default/b"},
		{"b.default.svc", "legacy", "default/b"},
		{"b.default.svc.cluster.local", "legacy", "default/b"},
		{"B.default.svc.cluster.local.", "legacy", "default/b"},
		{"legacy", "legacy", "legacy/legacy"},
		{"legacy", "default", ""},
		{"b.example.com", "default", ""},
		{"istio-ingressgateway.istio-system", "default", ""}, // gateways get no implied Service
	} {
		s, ok := m.ServiceByHost(tc.host, tc.ns)
		got := ""
		if ok {
			got = s.Namespace + "/" + s.Name
		}
		if got != tc.want {
			t.Errorf("ServiceByHost(%q, %q) = %q, want %q", tc.host, tc.ns, got, tc.want)
		}
	}
	web, _ := m.ServiceByHost("web", "default")
	if eps := m.Endpoints(web); len(eps) != 1 || eps[0].Name != "b" {
		t.Errorf("Endpoints(web) = %v", eps)
	}
	if got, want := web.Ports[0].TargetPort, uint32(8080); got != want {
		t.Errorf("named targetPort resolved to %d, want %d", got, want)
	}
	if got := m.ServiceAccounts(web); !slices.Equal(got, []string{"spiffe://cluster.local/ns/default/sa/bee"}) {
		t.Errorf("ServiceAccounts = %v", got)
	}
	a, _ := m.ServiceByHost("a", "default")
	if !a.Implied || a.Ports[0].TargetPort != 8080 || a.Selector["app"] != "a" {
		t.Errorf("implied service a = %+v", a)
	}
	if w, _ := m.Workload("a"); w.Labels["app"] != "a" || w.ServiceAccount != "a" || !w.Sidecar {
		t.Errorf("workload defaults = %+v", w)
	}
	if w, _ := m.Workload("legacy/legacy"); w.Sidecar || w.HasProxy() {
		t.Errorf("sidecar: false not honoured: %+v", w)
	}
	noSel := mustParse(t, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n"+"---\n"+
		"apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: yy, labels: {app: x}}\n")
	x, _ := noSel.ServiceByHost("x", "default")
	if eps := noSel.Endpoints(x); len(eps) != 0 {
		t.Errorf("service without selector selects %v", eps)
	}
}

func drDoc(name, ns, body string) string {
	return "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + body + "\n"
}

func TestDestinationRuleFor(t *testing.T) {
	svcs := `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: server}
spec: {ports: [{name: http, port: 8080}]}
`
	for _, tc := range []struct {
		name, drs, host, client, want string
	}{
		{"none", "", "b.server.svc.cluster.local", "client", ""},
		{"service ns", drDoc("s", "server", "{host: b}"), "b.server.svc.cluster.local", "client", "server/s"},
		{"short host relative to DR ns", drDoc("s", "client", "{host: b}"), "b.server.svc.cluster.local", "client", ""},
		{"client ns beats service ns", drDoc("s", "server", "{host: b}") + drDoc("c", "client", "{host: b.server.svc.cluster.local}"), "b.server.svc.cluster.local", "client", "client/c"},
		{"service ns beats root", drDoc("r", "istio-system", "{host: '*.local'}") + drDoc("s", "server", "{host: b}"), "b.server.svc.cluster.local", "client", "server/s"},
		{"root fallback", drDoc("r", "istio-system", "{host: '*'}"), "b.server.svc.cluster.local", "client", "istio-system/r"},
		{"exact before wildcard", drDoc("w", "server", "{host: '*.server.svc.cluster.local'}") + drDoc("e", "server", "{host: b.server.svc.cluster.local}"), "b.server.svc.cluster.local", "client", "server/e"},
		{"most specific wildcard", drDoc("w1", "server", "{host: '*.cluster.local'}") + drDoc("w2", "server", "{host: '*.server.svc.cluster.local'}"), "b.server.svc.cluster.local", "client", "server/w2"},
		{"exportTo dot hides from others", drDoc("s", "server", "{host: b, exportTo: ['.']}"), "b.server.svc.cluster.local", "client", ""},
		{"exportTo dot visible in own ns", drDoc("s", "server", "{host: b, exportTo: ['.']}"), "b.server.svc.cluster.local", "server", "server/s"},
		{"exportTo names client", drDoc("s", "server", "{host: b, exportTo: [client]}"), "b.server.svc.cluster.local", "client", "server/s"},
		{"exportTo names other", drDoc("s", "server", "{host: b, exportTo: [other]}"), "b.server.svc.cluster.local", "client", ""},
		{"local private DR applies to own ns client", drDoc("c", "client", "{host: '*', exportTo: ['.']}") + drDoc("s", "server", "{host: b}"), "b.server.svc.cluster.local", "client", "client/c"},
		{"short host query", drDoc("s", "server", "{host: b}"), "b", "server", "server/s"},
		{"root private DR for root client", drDoc("r", "istio-system", "{host: '*', exportTo: ['.']}") + drDoc("s", "server", "{host: b}"), "b.server.svc.cluster.local", "istio-system", "istio-system/r"},
		{"root public DR loses to service ns for root client", drDoc("r", "istio-system", "{host: '*'}") + drDoc("s", "server", "{host: b}"), "b.server.svc.cluster.local", "istio-system", "server/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, svcs+tc.drs)
			dr := m.DestinationRuleFor(tc.host, &Workload{Namespace: tc.client})
			got := ""
			if dr != nil {
				got = dr.Namespace + "/" + dr.Name
			}
			if got != tc.want {
				t.Errorf("DestinationRuleFor(%q, %q) = %q, want %q", tc.host, tc.client, got, tc.want)
			}
		})
	}
}

// inDefault is a client in the default namespace, without labels.
var inDefault = &Workload{Namespace: "default"}

func TestClientTLS(t *testing.T) {
	svcs := `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec: {ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]}
`
	dr := `{host: b, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}, portLevelSettings: [{port: {number: 9000}, tls: {mode: DISABLE}}, {port: {number: 7000}}]},
  subsets: [{name: v1, trafficPolicy: {tls: {mode: SIMPLE}, portLevelSettings: [{port: {number: 9000}, tls: {mode: MUTUAL, credentialName: c}}]}}, {name: v2}, {name: v3, trafficPolicy: {portLevelSettings: [{port: {number: 8080}}]}}]}`
	m := mustParse(t, svcs+drDoc("b", "default", dr)+drDoc("nn", "other", "{host: '*.other.svc.cluster.local'}"))
	for _, tc := range []struct {
		port   uint32
		subset string
		want   string
	}{
		{8080, "", "ISTIO_MUTUAL"},
		{9000, "", "DISABLE"},
		{7000, "", "<nil>"}, // a matching portLevelSettings entry without tls clears it
		{8080, "v1", "SIMPLE"},
		{9000, "v1", "MUTUAL"},
		{8080, "v2", "ISTIO_MUTUAL"}, // subset without policy inherits
		{9000, "v2", "DISABLE"},
		{8080, "v3", "<nil>"},
		{9000, "v3", "DISABLE"},
		{8080, "missing", "ISTIO_MUTUAL"},
	} {
		got := "<nil>"
		if tls := m.ClientTLS("b.default.svc.cluster.local", tc.port, tc.subset, inDefault); tls != nil {
			got = tls.GetMode().String()
		}
		if got != tc.want {
			t.Errorf("ClientTLS(port %d, subset %q) = %s, want %s", tc.port, tc.subset, got, tc.want)
		}
	}
	if tls := m.ClientTLS("x.other.svc.cluster.local", 80, "", inDefault); tls != nil {
		t.Errorf("DR without tls gave %v", tls)
	}
	if tls := m.ClientTLS("nothing.example.com", 80, "", inDefault); tls != nil {
		t.Errorf("no DR gave %v", tls)
	}
	if s, ok := m.Subset("b", "v1", inDefault); !ok || s.GetName() != "v1" {
		t.Errorf("Subset(v1) = %v %v", s, ok)
	}
	if _, ok := m.Subset("b", "v9", inDefault); ok {
		t.Errorf("Subset(v9) found")
	}
}

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
