package mesh

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, y string) *Mesh {
	t.Helper()
	m, err := Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestServicesAndEndpoints(t *testing.T) {
	m, err := Load("testdata/basic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, ns, want string }{
		{"web", "default", "default/web"},
		{"web.default", "legacy", "default/web"},
		{"web.default.svc", "legacy", "default/web"},
		{"web.default.svc.cluster.local", "legacy", "default/web"},
		{"WEB.default.svc.cluster.local.", "legacy", "default/web"},
		// Selected by web, b gets no implied Service of its own.
		{"b", "default", ""},
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

// Cluster IPs come from the top of the run's own prefix, one per Service
// that is not headless; a clusterIP in the YAML is recorded only.
func TestAddressPlanClusterIPs(t *testing.T) {
	m := mustParse(t, `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b1, labels: {app: b, version: v1}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b2, labels: {app: b, version: v2}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {clusterIP: 10.96.0.10, selector: {app: b}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: b-headless}
spec: {clusterIP: None, selector: {app: b}, ports: [{name: http, port: 8080}]}
`)
	var names []string
	for _, s := range m.Services {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	if want := []string{"default/b", "default/b-headless", "default/a"}; !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v (b1 and b2 are selected by b: no implied Service)", names, want)
	}
	plan := m.AddressPlan(netip.MustParsePrefix("172.30.5.0/24"))
	want := map[string]string{
		"default/a": "172.30.5.2", "default/b1": "172.30.5.3", "default/b2": "172.30.5.4",
		"Service/default/b": "172.30.5.254", "Service/default/a": "172.30.5.253",
	}
	if len(plan) != len(want) {
		t.Errorf("plan = %v, want %v", plan, want)
	}
	for k, v := range want {
		if plan[k].String() != v {
			t.Errorf("plan[%s] = %s, want %s", k, plan[k], v)
		}
	}
	if s, _ := m.ServiceByHost("b", "default"); s.ClusterIP != "10.96.0.10" {
		t.Errorf("recorded clusterIP = %q", s.ClusterIP)
	}
	if err := m.CheckAddressPlan(netip.MustParsePrefix("172.30.5.0/30")); err == nil {
		t.Error("a /30 holds 3 workloads and 2 cluster IPs: want an error")
	}
	if err := m.CheckAddressPlan(netip.MustParsePrefix("172.30.5.0/24")); err != nil {
		t.Error(err)
	}
	if got := m.PlanBits(); got != 24 {
		t.Errorf("PlanBits of 3 workloads and 2 cluster IPs = %d, want 24", got)
	}
}

// A network of PlanBits holds the plan exactly up to its last address.
func TestPlanBitsHoldsThePlan(t *testing.T) {
	for _, n := range []int{1, 125, 126, 300, 600} {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: w%d}\nspec: {ports: [{name: http, port: 8080}]}\n", i)
		}
		m := mustParse(t, b.String())
		bits := m.PlanBits()
		if len(m.Services) != n {
			t.Fatalf("%d workloads imply %d Services, want %d", n, len(m.Services), n)
		}
		base := netip.AddrFrom4([4]byte{172, 30, 0, 0})
		if err := m.CheckAddressPlan(netip.PrefixFrom(base, bits)); err != nil {
			t.Errorf("%d pods with a Service: PlanBits %d: %v", n, bits, err)
		}
		if bits < 24 {
			if err := m.CheckAddressPlan(netip.PrefixFrom(base, bits+1)); err == nil {
				t.Errorf("%d pods with a Service: /%d is not the smallest network that holds them", n, bits)
			}
		}
	}
}

// The Service annotation networking.istio.io/exportTo as Istio reads it
// (pilot/pkg/serviceregistry/kube/conversion.go; push_context.go IsServiceVisible).
func TestServiceExportToAnnotation(t *testing.T) {
	m := mustParse(t, `apiVersion: v1
kind: Service
metadata:
  name: s
  namespace: srv
  annotations: {networking.istio.io/exportTo: " client ,Bad_Name"}
spec:
  selector: {app: s}
  ports: [{port: 80}]
`)
	s := m.Services[0]
	if !slices.Equal(s.ExportTo, []string{"client", "Bad_Name"}) {
		t.Fatalf("ExportTo = %q", s.ExportTo)
	}
	for ns, want := range map[string]bool{"client": true, "srv": false, "other": false} {
		if got := s.VisibleFrom(ns); got != want {
			t.Errorf("VisibleFrom(%s) = %v, want %v", ns, got, want)
		}
	}
	if len(m.Notices) != 1 || !strings.Contains(m.Notices[0].Message, `"Bad_Name" is neither`) {
		t.Errorf("notices = %v, want one naming Bad_Name", m.Notices)
	}
}

// A host several namespaces declare: a sidecar keeps its own namespace's
// declaration, else the first (exported by name before exported to all,
// then the oldest), a Service before a ServiceEntry; a gateway the first,
// a Service before a ServiceEntry (sidecar.go selectServices,
// appendSidecarServices).
func TestHostNamespace(t *testing.T) {
	se := func(ns, created, exportTo string) string {
		return fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api, namespace: %s, creationTimestamp: %q}\nspec: {hosts: [api.example.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS%s}\n", ns, created, exportTo)
	}
	wl := func(ns string, gateway bool) string {
		name := "c"
		if gateway {
			name = "g"
		}
		return fmt.Sprintf("apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\nspec: {gateway: %v}\n", name, ns, name, gateway)
	}
	m := mustParse(t, strings.Join([]string{
		wl("a", false), wl("b", false), wl("d", false), wl("e", false), wl("b", true),
		se("a", "2025-01-01T00:00:00Z", ""),
		se("b", "2026-01-01T00:00:00Z", ""),
		se("c", "2027-01-01T00:00:00Z", ", exportTo: [e, c]"),
	}, "---\n"))
	for _, tc := range []struct{ proxy, want string }{
		{"a/c", "a"}, // its own
		{"b/c", "b"}, // its own, though a's is older
		{"d/c", "a"}, // none of its own: the oldest public one
		{"e/c", "c"}, // exported to e by name: before the public ones
		{"b/g", "a"}, // a gateway in b: the first, no own-namespace preference
	} {
		w, _ := m.Workload(tc.proxy)
		if got := m.HostNamespace("api.example.com", w); got != tc.want {
			t.Errorf("HostNamespace(api.example.com, %s) = %q, want %q", tc.proxy, got, tc.want)
		}
	}
	w, _ := m.Workload("a/c")
	if got := m.HostNamespace("nowhere.example.com", w); got != "" {
		t.Errorf("an undeclared host: %q", got)
	}
}
