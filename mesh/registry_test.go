package mesh

import (
	"slices"
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
