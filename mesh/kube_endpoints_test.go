package mesh

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const (
	extServer = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: ext, namespace: external}
spec: {external: true, sidecar: false, addresses: [198.51.100.7], hostnames: [ext.example.com], ports: [{name: https, port: 443, tls: true}]}
`
	podB = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec: {ports: [{name: http, port: 8080}]}
`
	manualSvc = `apiVersion: v1
kind: Service
metadata: {name: m}
spec: {ports: [{name: tls, port: 443}, {name: http, port: 80}]}
`
)

func parseDocs(t *testing.T, docs ...string) *Mesh {
	t.Helper()
	return mustParse(t, strings.Join(docs, "---\n"))
}

func problems(t *testing.T, docs ...string) string {
	t.Helper()
	_, err := Parse("t.yaml", []byte(strings.Join(docs, "---\n")))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	return ve.Error()
}

func noticesOf(m *Mesh) string {
	var out []string
	for _, n := range m.Notices {
		out = append(out, n.String())
	}
	return strings.Join(out, "\n")
}

// A selector-less Service takes its endpoints from its Endpoints: a pod by
// targetRef, an outside address by the external workload that lists it;
// the target port is the endpoint port of the Service port's name.
func TestManualEndpoints(t *testing.T) {
	m := parseDocs(t, extServer, podB, manualSvc, `apiVersion: v1
kind: Endpoints
metadata: {name: m}
subsets:
- addresses: [{ip: 198.51.100.7}, {ip: 10.1.2.3, targetRef: {kind: Pod, name: b}}]
  notReadyAddresses: [{ip: 198.51.100.9}]
  ports: [{name: tls, port: 8443}]
`)
	s, _ := m.ServiceByHost("m", "default")
	if !s.Manual || len(s.ManualEndpoints) != 2 {
		t.Fatalf("service %+v: want 2 manual endpoints", s)
	}
	ext, _ := m.Workload("external/ext")
	b, _ := m.Workload("b")
	if e := s.ManualEndpoints[0]; e.Answer != ext || e.Pod != nil || e.Addr != netip.MustParseAddr("198.51.100.7") || e.Ports["tls"] != 8443 {
		t.Errorf("outside endpoint %+v", e)
	}
	if e := s.ManualEndpoints[1]; e.Pod != b || e.Answer != nil {
		t.Errorf("pod endpoint %+v", e)
	}
	if eps := m.Endpoints(s); len(eps) != 1 || eps[0] != b {
		t.Errorf("Endpoints = %v, want pod b only", eps)
	}
	if s.Ports[0].TargetPort != 8443 || s.Ports[1].TargetPort != 80 {
		t.Errorf("target ports %+v: want 8443 (endpoints) and 80 (no endpoint port: the port)", s.Ports)
	}
	if n := noticesOf(m); !strings.Contains(n, "198.51.100.9 is not ready") {
		t.Errorf("notices %q: want the not-ready address named", n)
	}
}

// EndpointSlices win over Endpoints (Istio reads slices); the Endpoints of a
// Service with a selector, or of no Service, are skipped with a notice.
func TestEndpointSlicesAndNotices(t *testing.T) {
	m := parseDocs(t, extServer, podB, manualSvc, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: m-abc, labels: {kubernetes.io/service-name: m}}
addressType: IPv4
endpoints: [{addresses: [198.51.100.7]}, {addresses: [198.51.100.7], conditions: {ready: false}}]
ports: [{name: tls, port: 443}]
`, `apiVersion: v1
kind: Endpoints
metadata: {name: m}
subsets: [{addresses: [{ip: 10.9.9.9}], ports: [{name: tls, port: 443}]}]
`, `apiVersion: v1
kind: Endpoints
metadata: {name: b}
subsets: [{addresses: [{ip: 10.9.9.9}]}]
`, `apiVersion: v1
kind: Endpoints
metadata: {name: gone}
`, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: m-fqdn, labels: {kubernetes.io/service-name: m}}
addressType: FQDN
endpoints: [{addresses: [x.example.com]}]
`)
	s, _ := m.ServiceByHost("m", "default")
	if len(s.ManualEndpoints) != 1 || s.ManualEndpoints[0].Addr.String() != "198.51.100.7" {
		t.Errorf("endpoints %+v: want the slice's ready address only (10.9.9.9 of the Endpoints would be refused)", s.ManualEndpoints)
	}
	n := noticesOf(m)
	for _, want := range []string{
		"Endpoints default/m: skipped: the bundle has EndpointSlices",
		"Endpoints default/b: skipped: derived from the selector",
		"Endpoints default/gone: skipped: no Service default/gone",
		"EndpointSlice default/m-fqdn: skipped: addressType FQDN",
	} {
		if !strings.Contains(n, want) {
			t.Errorf("notices lack %q:\n%s", want, n)
		}
	}
}

// What the run cannot reach is refused, naming the field and the fix.
func TestManualEndpointsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		docs []string
		want []string
	}{
		{"outside address nobody answers", []string{podB, manualSvc, "apiVersion: v1\nkind: Endpoints\nmetadata: {name: m}\nsubsets: [{addresses: [{ip: 203.0.113.5}], ports: [{name: tls, port: 443}]}]\n"},
			[]string{"Endpoints default/m: subsets[0].addresses[0]", "203.0.113.5 is outside the run's network", "addresses: [203.0.113.5]"}},
		{"targetRef to a missing pod", []string{podB, manualSvc, "apiVersion: v1\nkind: Endpoints\nmetadata: {name: m}\nsubsets: [{addresses: [{ip: 10.0.0.1, targetRef: {kind: Pod, name: web-5d9f-x2x}}]}]\n"},
			[]string{"subsets[0].addresses[0].targetRef", "pod default/web-5d9f-x2x", "not a workload of the bundle"}},
		{"IPv6 slice", []string{podB, manualSvc, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: m}}\naddressType: IPv6\nendpoints: []\n"},
			[]string{"EndpointSlice default/s: addressType", "IPv6"}},
		{"addresses on a pod", []string{"apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {addresses: [198.51.100.1]}\n"},
			[]string{"Workload default/a: spec.addresses[0]", "external: true"}},
		{"one address, two workloads", []string{extServer, "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: ext2, namespace: external}\nspec: {external: true, addresses: [198.51.100.7]}\n"},
			[]string{"Workload external/ext2: spec.addresses[0]", "already an address of workload external/ext"}},
		{"ExternalName loop", []string{podB, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName, externalName: z.default.svc.cluster.local}\n",
			"apiVersion: v1\nkind: Service\nmetadata: {name: z}\nspec: {type: ExternalName, externalName: x.default.svc.cluster.local}\n"},
			[]string{"Service default/x: spec.externalName", "loops"}},
		{"check resolve to nothing", []string{podB, "apiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: {from: b, to: 'https://x.example.com/', resolve: nowhere.example.com}\n"},
			[]string{"Check default/c: spec.resolve", "resolves to nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.docs...)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems lack %q:\n%s", w, got)
				}
			}
		})
	}
}

// An ExternalName Service is an alias of the host it names (through other
// ExternalName Services), seen only where the alias is exported; it has no
// cluster IP and no endpoints.
func TestExternalNameAliases(t *testing.T) {
	m := parseDocs(t, podB, extServer,
		"apiVersion: v1\nkind: Service\nmetadata: {name: to-b, namespace: other}\nspec: {type: ExternalName, externalName: b.default.svc.cluster.local, selector: {app: b}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: hop, annotations: {networking.istio.io/exportTo: '.'}}\nspec: {type: ExternalName, externalName: to-b.other.svc.cluster.local}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: to-ext}\nspec: {type: ExternalName, externalName: EXT.example.com.}\n")
	to, _ := m.ServiceByHost("to-b.other", "")
	hop, _ := m.ServiceByHost("hop", "default")
	ext, _ := m.ServiceByHost("to-ext", "default")
	if got := m.ExternalNameTarget(hop); got != "b.default.svc.cluster.local" {
		t.Errorf("hop resolves to %q", got)
	}
	if got := m.ExternalNameTarget(ext); got != "ext.example.com" {
		t.Errorf("to-ext resolves to %q, want the name lower-cased without the root dot", got)
	}
	if a := m.Aliases("b.default.svc.cluster.local", "default"); len(a) != 2 || a[0] != hop || a[1] != to {
		t.Errorf("aliases of b from default = %v, want hop and to-b", a)
	}
	if a := m.Aliases("b.default.svc.cluster.local", "other"); len(a) != 1 || a[0] != to {
		t.Errorf("aliases of b from other = %v, want to-b only (hop is exported to default)", a)
	}
	if to.HasClusterIP() || to.Headless() || len(m.Endpoints(to)) != 0 {
		t.Errorf("an ExternalName Service has no cluster IP and no endpoints: %+v", to)
	}
	if _, ok := m.AddressPlan(netip.MustParsePrefix("10.0.0.0/24"))[to.VIPKey()]; ok {
		t.Error("the address plan gave an ExternalName Service a cluster IP")
	}
	if n := noticesOf(m); !strings.Contains(n, "spec.selector: ignored for type ExternalName") {
		t.Errorf("notices %q", n)
	}
}
