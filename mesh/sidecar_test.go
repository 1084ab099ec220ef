package mesh

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// sidecarDoc is a Sidecar document: selector "" leaves workloadSelector
// out, ts "" leaves creationTimestamp out.
func sidecarDoc(ns, name, ts, selector string, hosts ...string) string {
	meta := fmt.Sprintf("{name: %s, namespace: %s", name, ns)
	if ts != "" {
		meta += ", creationTimestamp: '" + ts + "'"
	}
	spec := "egress: [{hosts: [" + strings.Join(quoted(hosts), ", ") + "]}]"
	if selector != "" {
		spec += ", workloadSelector: {labels: {app: " + selector + "}}"
	}
	return "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: " + meta + "}\nspec: {" + spec + "}\n---\n"
}

func quoted(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, "'"+s+"'")
	}
	return out
}

const sidecarPods = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: other, namespace: shop, labels: {app: other}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: elsewhere, namespace: web, labels: {app: client}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: gw, namespace: shop, labels: {app: client}}
spec: {gateway: true, ports: [{name: http, port: 8080}]}
`

// Which Sidecar applies: a matching selector in the pod's namespace
// (oldest first), else the namespace's one without selector, else the root
// namespace's; gateways none (push_context.go initSidecarScopes,
// getSidecarScope).
func TestSidecarSelection(t *testing.T) {
	for _, tc := range []struct {
		name, docs, pod, want string
	}{
		{"none", "", "shop/client", ""},
		{"namespace default", sidecarDoc("shop", "ns", "", "", "./*"), "shop/client", "ns"},
		{"selector beats namespace default", sidecarDoc("shop", "a-ns", "2024-01-01T00:00:00Z", "", "./*") + sidecarDoc("shop", "z-sel", "2024-06-01T00:00:00Z", "client", "./*"), "shop/client", "z-sel"},
		{"selector not matching: namespace default", sidecarDoc("shop", "ns", "", "", "./*") + sidecarDoc("shop", "sel", "", "client", "./*"), "shop/other", "ns"},
		{"oldest matching selector", sidecarDoc("shop", "a", "2024-06-01T00:00:00Z", "client", "./*") + sidecarDoc("shop", "b", "2024-01-01T00:00:00Z", "client", "./*"), "shop/client", "b"},
		{"root namespace default", sidecarDoc(RootNamespace, "root", "", "", "./*"), "web/elsewhere", "root"},
		{"namespace default beats root", sidecarDoc(RootNamespace, "root", "", "", "./*") + sidecarDoc("web", "web", "", "", "./*"), "web/elsewhere", "web"},
		{"another namespace's selector does not apply", sidecarDoc("shop", "sel", "", "client", "./*"), "web/elsewhere", ""},
		{"root selector applies only in the root namespace", sidecarDoc(RootNamespace, "rootsel", "", "client", "./*"), "web/elsewhere", ""},
		{"gateways ignore Sidecars", sidecarDoc("shop", "ns", "", "", "./*"), "shop/gw", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, tc.docs+sidecarPods)
			w, ok := m.Workload(tc.pod)
			if !ok {
				t.Fatalf("no workload %s", tc.pod)
			}
			got := ""
			if sc := m.SidecarFor(w); sc != nil {
				got = sc.Name
			}
			if got != tc.want {
				t.Errorf("SidecarFor(%s) = %q, want %q", tc.pod, got, tc.want)
			}
		})
	}
}

func mustParseSidecar(ns string, hosts []string) *networking.Sidecar {
	m, err := Parse("t.yaml", []byte(sidecarDoc(ns, "s", "", "", hosts...)))
	if err != nil {
		panic(err)
	}
	return m.Sidecars[0]
}

// Egress hosts: namespace/dnsName with ".", "*", "~" and wildcards
// (sidecar.go convertIstioListenerToWrapper, selectServices,
// hostClassification.Matches and Excluded; host.Name.SubsetOf).
func TestSidecarImportsHost(t *testing.T) {
	for _, tc := range []struct {
		hosts    []string
		host, ns string
		want     bool
	}{
		{[]string{"./*"}, "a.shop.svc.cluster.local", "shop", true},
		{[]string{"./*"}, "a.web.svc.cluster.local", "web", false},
		{[]string{"./*", "istio-system/*"}, "istiod.istio-system.svc.cluster.local", "istio-system", true},
		{[]string{"*/*"}, "a.web.svc.cluster.local", "web", true},
		{[]string{"web/a.web.svc.cluster.local"}, "a.web.svc.cluster.local", "web", true},
		{[]string{"web/a.web.svc.cluster.local"}, "b.web.svc.cluster.local", "web", false},
		{[]string{"shop/a.web.svc.cluster.local"}, "a.web.svc.cluster.local", "web", false}, // the namespace is the service's
		{[]string{"*/*.example.com"}, "api.example.com", "egress", true},
		{[]string{"*/*.example.com"}, "example.com", "egress", false},
		{[]string{"*/*.example.com"}, "*.api.example.com", "egress", true}, // a wildcard entry inside
		{[]string{"*/api.example.com"}, "*.example.com", "egress", false},  // a wildcard entry is not inside an exact name
		{[]string{"*/*.com"}, "*.example.com", "egress", true},
		{[]string{"*/*", "~/b.web.svc.cluster.local"}, "b.web.svc.cluster.local", "web", false},
		{[]string{"*/*", "~/b.web.svc.cluster.local"}, "a.web.svc.cluster.local", "web", true},
		{[]string{"web/*", "~web/*.internal"}, "db.internal", "web", false},
		{[]string{"web/*", "~shop/*.internal"}, "db.internal", "web", true}, // excluded in another namespace only
		{[]string{"*/*", "~./*"}, "a.shop.svc.cluster.local", "shop", false},
	} {
		t.Run(strings.Join(tc.hosts, ",")+" "+tc.ns+"/"+tc.host, func(t *testing.T) {
			s := NewSidecarScope(mustParseSidecar("shop", tc.hosts), "shop")
			if got := s.importsHost(tc.host, tc.ns); got != tc.want {
				t.Errorf("importsHost = %t, want %t", got, tc.want)
			}
		})
	}
}

// A root-namespace Sidecar's "." is the proxy's namespace
// (convertToSidecarScope(ps, meshRootSidecarConfig, proxy.ConfigNamespace)).
func TestRootSidecarDotIsProxyNamespace(t *testing.T) {
	m := mustParse(t, sidecarDoc(RootNamespace, "root", "", "", "./*")+sidecarPods)
	w, _ := m.Workload("web/elsewhere")
	s := m.ScopeFor(w)
	if !s.importsHost("x.web.svc.cluster.local", "web") || s.importsHost("x.istio-system.svc.cluster.local", RootNamespace) {
		t.Errorf("root Sidecar with ./* for a proxy in web: want web imported and istio-system not")
	}
}

// Select: VirtualService destinations join the scope with the ports their
// routes name; one namespace per hostname, the proxy's own first
// (collectImportedServices, serviceMatchingVirtualServicePorts, selectServices).
func TestSidecarSelect(t *testing.T) {
	vs := mustParse(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: [front]
  http:
  - route: [{destination: {host: back.web.svc.cluster.local, port: {number: 9090}}}]
  - match: [{sourceNamespace: other}]
    route: [{destination: {host: hidden.web.svc.cluster.local}}]
`).VirtualServices
	dests := []Destination{
		{Host: "front.shop.svc.cluster.local", Namespace: "shop", Kube: true, Ports: []uint32{80}},
		{Host: "back.web.svc.cluster.local", Namespace: "web", Kube: true, Ports: []uint32{80, 9090}},
		{Host: "hidden.web.svc.cluster.local", Namespace: "web", Kube: true, Ports: []uint32{80}},
		{Host: "api.example.com", Namespace: "web", Ports: []uint32{443}},
		{Host: "api.example.com", Namespace: "shop", Ports: []uint32{443}},
	}
	s := NewSidecarScope(mustParseSidecar("shop", []string{"./*", "web/api.example.com"}), "shop")
	if !s.ImportsVirtualService(vs[0]) {
		t.Fatal("the VirtualService of the proxy's namespace is not imported by ./*")
	}
	var got []string
	for _, im := range s.Select(dests, vs) {
		got = append(got, fmt.Sprintf("%s/%s%v listen=%t", im.Namespace, im.Host, im.Ports, im.Listen))
	}
	want := []string{
		"shop/front.shop.svc.cluster.local[80] listen=true",
		"shop/api.example.com[443] listen=true",             // the proxy's namespace wins the hostname
		"web/back.web.svc.cluster.local[9090] listen=false", // a cluster for the route, no listener
	}
	if !slices.Equal(got, want) {
		t.Errorf("Select =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s = NewSidecarScope(mustParseSidecar("shop", []string{"web/*"}), "shop")
	if s.ImportsVirtualService(vs[0]) {
		t.Error("a VirtualService of shop imported by web/* only")
	}
}

// The fields meshtls does not model are refused by name; bad hosts too.
func TestSidecarValidation(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"egress: [{hosts: ['default']}]", "spec.egress[0].hosts[0]"},
		{"egress: [{hosts: ['./a*b']}]", "spec.egress[0].hosts[0]"},
		{"egress: [{port: {number: 80, protocol: HTTP, name: http}, hosts: ['./*']}]", "spec.egress[0].port"},
		{"egress: [{bind: 127.0.0.1, hosts: ['./*']}]", "spec.egress[0].bind"},
		{"egress: [{captureMode: NONE, hosts: ['./*']}]", "spec.egress[0].captureMode"},
		{"ingress: [{port: {number: 80, protocol: HTTP, name: http}, defaultEndpoint: '127.0.0.1:8080'}]", "spec.ingress"},
		{"outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com, port: {number: 3128}}}", "spec.outboundTrafficPolicy.egressProxy"},
		{"inboundConnectionPool: {tcp: {maxConnections: 1}}", "spec.inboundConnectionPool"},
		{"workloadSelector: {labels: {app: client}}", "spec"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, namespace: shop}\nspec: {"+tc.spec+"}\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"egress: [{hosts: ['./*', 'istio-system/*', '~/*.internal', '*/*.example.com']}]", "outboundTrafficPolicy: {mode: ALLOW_ANY}", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}"} {
		if _, err := Parse("t.yaml", []byte("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, namespace: shop}\nspec: {"+ok+"}\n")); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// Of one hostname in several namespaces (none the proxy's, no Kubernetes
// Service) the first in the registry's order is kept: exported by name
// before public, then oldest, then by namespace (push_context.go
// servicesExportedToNamespace, SortServicesByCreationTime).
func TestSidecarSelectFirstNamespace(t *testing.T) {
	s := NewSidecarScope(nil, "shop")
	pick := func(ds ...Destination) string {
		im := s.Select(ds, nil)
		if len(im) != 1 {
			t.Fatalf("Select = %v, want one import", im)
		}
		return im[0].Namespace
	}
	d := func(ns string, public bool) Destination {
		return Destination{Host: "api.example.com", Namespace: ns, Public: public, Ports: []uint32{443}}
	}
	if got := pick(d("zzz", true), d("ext", true)); got != "ext" {
		t.Errorf("equal age: got %s, want ext (namespace order)", got)
	}
	if got := pick(d("ext", true), d("zzz", false)); got != "zzz" {
		t.Errorf("exported by name: got %s, want zzz", got)
	}
	if got := pick(d("ext", true), d("shop", true)); got != "shop" {
		t.Errorf("the proxy's namespace: got %s, want shop", got)
	}
	k := d("zzz", true)
	k.Kube = true
	if got := pick(d("ext", true), k); got != "zzz" {
		t.Errorf("a Kubernetes Service over a ServiceEntry: got %s, want zzz", got)
	}
}
