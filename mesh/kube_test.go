package mesh

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The kubectl dump in scenarios/testdata loads unchanged: the right pods,
// sidecars, ports and Services, and a notice for everything not run.
func TestLoadClusterDump(t *testing.T) {
	m, err := Load("../scenarios/testdata/16-cluster-shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		sidecar, gateway bool
		sa               string
		ports            string
	}
	wants := map[string]want{
		"istio-system/istio-ingressgateway": {true, true, "istio-ingressgateway-service-account", ""},
		"legacy/sleep":                      {false, false, "sleep", "http:8080"},
		"shop/frontend-0":                   {true, false, "frontend", "http:8080"},
		"shop/frontend-1":                   {true, false, "frontend", "http:8080"},
		"shop/ratings":                      {false, false, "ratings", "http:9080"},
		"shop/reviews":                      {true, false, "reviews", "http:9080"},
	}
	var got []string
	for _, w := range m.Workloads {
		got = append(got, w.ID())
		wt, ok := wants[w.ID()]
		if !ok {
			continue
		}
		var ports []string
		for _, p := range w.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		if w.Sidecar != wt.sidecar || w.Gateway != wt.gateway || w.ServiceAccount != wt.sa || strings.Join(ports, ",") != wt.ports {
			t.Errorf("%s: sidecar %v gateway %v sa %s ports %v; want %+v", w.ID(), w.Sidecar, w.Gateway, w.ServiceAccount, ports, wt)
		}
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "istio-system/istio-ingressgateway legacy/sleep shop/frontend-0 shop/frontend-1 shop/ratings shop/reviews" {
		t.Errorf("workloads %v", got)
	}
	if w, ok := m.Workload("shop/frontend"); !ok || w.Name != "frontend-0" {
		t.Errorf("ref shop/frontend = %v, want the first replica", w)
	}
	if w, _ := m.Workload("shop/reviews"); !slices.Equal(w.Capture.ExcludeOutbound, []uint32{5432}) {
		t.Errorf("reviews capture %+v, want excludeOutboundPorts 5432", w.Capture)
	}
	s, _ := m.ServiceByHost("frontend.shop.svc.cluster.local", "shop")
	if s == nil || s.Ports[0].TargetPort != 8080 || s.ClusterIP != "10.96.120.7" || s.Implied {
		t.Errorf("frontend Service %+v: want targetPort 8080 from the named port, cluster IP recorded", s)
	}
	notices := ""
	for _, n := range m.Notices {
		notices += n.String() + "\n"
	}
	for _, w := range []string{
		"(document 1, item 7) Deployment istio-system/istiod: skipped: Istio's control plane",
		"Deployment kube-system/coredns: skipped: kube-system",
		"Service kube-system/kube-dns: skipped",
		"Deployment legacy/sleep: no sidecar: namespace legacy has no istio-injection",
		`Deployment shop/ratings: no sidecar: the pod template has the annotation sidecar.istio.io/inject: "false"`,
		"Service istio-system/istio-ingressgateway: type LoadBalancer served as ClusterIP",
	} {
		if !strings.Contains(notices, w) {
			t.Errorf("notices lack %q:\n%s", w, notices)
		}
	}
}

// Sidecar injection as Istio's webhook selectors and injectRequired decide.
func TestInjectionDecision(t *testing.T) {
	for _, tc := range []struct {
		name              string
		ns, labels, annos map[string]string
		hostNetwork       bool
		want              bool
		why               string
	}{
		{"namespace enabled", map[string]string{"istio-injection": "enabled"}, nil, nil, false, true, ""},
		{"namespace enabled, label false", map[string]string{"istio-injection": "enabled"}, map[string]string{"sidecar.istio.io/inject": "false"}, nil, false, false, `label sidecar.istio.io/inject: "false"`},
		{"namespace enabled, annotation false", map[string]string{"istio-injection": "enabled"}, nil, map[string]string{"sidecar.istio.io/inject": "false"}, false, false, `annotation sidecar.istio.io/inject: "false"`},
		{"label true wins over annotation false", map[string]string{"istio-injection": "enabled"}, map[string]string{"sidecar.istio.io/inject": "true"}, map[string]string{"sidecar.istio.io/inject": "false"}, false, true, ""},
		{"namespace disabled beats label true", map[string]string{"istio-injection": "disabled"}, map[string]string{"sidecar.istio.io/inject": "true"}, nil, false, false, "istio-injection=disabled"},
		{"namespace revision", map[string]string{"istio.io/rev": "default"}, nil, nil, false, true, ""},
		{"namespace other revision", map[string]string{"istio.io/rev": "canary"}, nil, nil, false, true, "every revision"},
		{"namespace revision, label false", map[string]string{"istio.io/rev": "canary"}, map[string]string{"sidecar.istio.io/inject": "false"}, nil, false, false, "label"},
		{"no namespace label, pod label true", nil, map[string]string{"sidecar.istio.io/inject": "true"}, nil, false, true, ""},
		{"no namespace label, pod revision", nil, map[string]string{"istio.io/rev": "default"}, nil, false, true, ""},
		{"no namespace label, pod label true and revision", nil, map[string]string{"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, nil, false, true, "every revision"},
		{"no labels at all", nil, nil, nil, false, false, "no istio-injection or istio.io/rev label"},
		{"annotation true cannot enable", nil, nil, map[string]string{"sidecar.istio.io/inject": "true"}, false, false, "sees labels only"},
		{"host network", map[string]string{"istio-injection": "enabled"}, nil, nil, true, false, "host network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := injectionDecision(tc.ns, metav1.ObjectMeta{Namespace: "ns1", Labels: tc.labels, Annotations: tc.annos}, corev1.PodSpec{HostNetwork: tc.hostNetwork})
			if got != tc.want || !strings.Contains(why, tc.why) || (tc.why == "" && why != "") {
				t.Errorf("inject = %v (%q), want %v (%q)", got, why, tc.want, tc.why)
			}
		})
	}
}

const kubeNS = `apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio-injection: enabled}}
`

func deploy(name, extra string) string {
	return `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: app}
spec:
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata:
      labels: {app: ` + name + `}
` + extra
}

func TestLoadKubeWorkloads(t *testing.T) {
	t.Run("replicas capped, namespace later in the file", func(t *testing.T) {
		m := mustParse(t, deploy("a", "    spec: {containers: [{name: a, ports: [{containerPort: 8080}]}]}\n")+"  replicas: 5\n---\n"+kubeNS)
		if len(m.Workloads) != MaxReplicas || !m.Workloads[0].Sidecar || m.Workloads[2].Name != "a-2" {
			t.Errorf("workloads %+v", m.Workloads)
		}
		if len(m.Notices) == 0 || !strings.Contains(m.Notices[0].String(), "replicas 5 capped at 3") {
			t.Errorf("notices %v", m.Notices)
		}
	})
	t.Run("owned objects are skipped", func(t *testing.T) {
		rs := "---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: a-5d, namespace: app, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: a, uid: u1, controller: true}]}\n" +
			"spec: {selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: a}}, spec: {containers: [{name: a}]}}}\n"
		pod := "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a-5d-x1, namespace: app, labels: {app: a}, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: a-5d, uid: u2, controller: true}]}\n" +
			"spec: {containers: [{name: a}, {name: istio-proxy, ports: [{containerPort: 15090}]}]}\nstatus: {podIP: 10.244.0.7}\n"
		m := mustParse(t, kubeNS+deploy("a", "    spec: {containers: [{name: a}]}\n")+rs+pod)
		if len(m.Workloads) != 1 || m.Workloads[0].Name != "a" || m.Workloads[0].Kind != "Deployment" {
			t.Errorf("workloads %+v, want only the Deployment's pod", m.Workloads)
		}
		// Alone, the Pod is what it is: injected, because it has istio-proxy.
		m = mustParse(t, pod)
		if len(m.Workloads) != 1 || !m.Workloads[0].Sidecar || len(m.Workloads[0].Ports) != 0 {
			t.Errorf("a lone injected Pod: %+v, want a sidecar and no istio-proxy ports", m.Workloads)
		}
	})
	t.Run("Service targets make app ports, with the Service's protocol", func(t *testing.T) {
		m := mustParse(t, kubeNS+deploy("a", "    spec: {containers: [{name: a, ports: [{containerPort: 8443, name: web}]}]}\n")+
			"---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: app}\nspec: {selector: {app: a}, ports: [{name: https, port: 443, targetPort: web}, {name: tcp-x, port: 9000}]}\n")
		w := m.Workloads[0]
		if len(w.Ports) != 2 || w.Ports[0].Name != "https" || !w.Ports[0].TLS || w.Ports[1].Port != 9000 || w.Ports[1].TLS {
			t.Errorf("ports %+v", w.Ports)
		}
		if _, implied := m.Sources["Service/app/a"]; !implied || len(m.Services) != 1 {
			t.Errorf("a Kubernetes pod gets no implied Service: %+v", m.Services)
		}
	})
	t.Run("capture annotations", func(t *testing.T) {
		m := mustParse(t, kubeNS+deploy("a", "      annotations:\n        traffic.sidecar.istio.io/includeInboundPorts: \"8080, 9090\"\n"+
			"        traffic.sidecar.istio.io/excludeOutboundIPRanges: 10.0.0.0/8,1.2.3.4\n        traffic.sidecar.istio.io/includeOutboundIPRanges: \"\"\n"+
			"        sidecar.istio.io/interceptionMode: TPROXY\n    spec: {containers: [{name: a}]}\n"))
		c := m.Workloads[0].Capture
		if !slices.Equal(c.InboundPorts, []uint32{8080, 9090}) || !c.NoOutbound ||
			!slices.Equal(c.ExcludeRanges, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("1.2.3.4/32")}) {
			t.Errorf("capture %+v", c)
		}
		all := ""
		for _, n := range m.Notices {
			all += n.String() + "\n"
		}
		if !strings.Contains(all, "sidecar.istio.io/interceptionMode]: not modelled") || !strings.Contains(all, "outbound IP ranges apply to the run's own") {
			t.Errorf("notices:\n%s", all)
		}
	})
}

func TestLoadKubeErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad capture port", kubeNS + deploy("a", "      annotations: {traffic.sidecar.istio.io/excludeInboundPorts: \"80,http\"}\n    spec: {containers: [{name: a}]}\n"),
			`Deployment app/a: spec.template.metadata.annotations[traffic.sidecar.istio.io/excludeInboundPorts]: "http" is not a port`},
		{"bad capture range", kubeNS + deploy("a", "      annotations: {traffic.sidecar.istio.io/excludeOutboundIPRanges: \"10.0.0.0/33\"}\n    spec: {containers: [{name: a}]}\n"),
			`excludeOutboundIPRanges]: "10.0.0.0/33" is not an IP range`},
		{"unknown Deployment field", kubeNS + deploy("a", "    spec: {containers: [{name: a, bogus: 1}]}\n"),
			"(document 2) Deployment app/a: spec.template.spec.containers[0].bogus: unknown field"},
		{"two objects, one workload name", kubeNS + deploy("a", "    spec: {containers: [{name: a}]}\n") +
			"---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a, namespace: app}\nspec: {selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: a}}, spec: {containers: [{name: a}]}}}\n",
			"(document 3) StatefulSet app/a: metadata.name: workload app/a is defined twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("k.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Explore generates one call per client and service port, in the port's
// protocol, and the outside client's calls to every gateway server host.
func TestExplore(t *testing.T) {
	m, err := Load("../scenarios/testdata/16-cluster-shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	notes := m.Explore()
	var calls []string
	for _, c := range m.Checks {
		if !c.Explored || c.Expect != nil {
			t.Errorf("%s: explored %v expect %v", c.Name, c.Explored, c.Expect)
		}
		calls = append(calls, c.From+" "+c.To+" "+c.Via)
	}
	for _, want := range []string{
		"legacy/sleep http://reviews.shop.svc.cluster.local:9080/ ",
		"shop/frontend-0 http://sleep.legacy.svc.cluster.local:80/ ",
		"meshtls-explore/outside http://shop.example.com:80/ istio-system/istio-ingressgateway",
	} {
		if !slices.Contains(calls, want) {
			t.Errorf("no call %q in:\n%s", want, strings.Join(calls, "\n"))
		}
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "shop/frontend-1 ") || strings.HasPrefix(c, "shop/frontend-0 http://frontend.") || strings.Contains(c, "istio-ingressgateway.istio-system") {
			t.Errorf("unexpected call %q (second replica, own service, or a gateway's Service)", c)
		}
	}
	if len(m.Checks) != 13 {
		t.Errorf("%d calls, want 13 (4 clients x 3 other services + 1 gateway host)", len(m.Checks))
	}
	if _, ok := m.Workload(OutsideClient); !ok {
		t.Error("no outside client added for the gateway calls")
	}
	if len(notes) != 2 || !strings.Contains(notes[0].String(), "Service default/kubernetes: not explored: it selects no pod") {
		t.Errorf("notes %v", notes)
	}
}

// A directory: Load reads it all, recursively; Bundles makes each file
// directly inside one bundle and each subdirectory one bundle.
func TestDirectories(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"a.yaml":             "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n",
		"app/deploy.yaml":    kubeNS + deploy("b", "    spec: {containers: [{name: b}]}\n"),
		"app/istio/pa.yml":   "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: app}\nspec: {mtls: {mode: STRICT}}\n",
		".git/config.yaml":   "not: [yaml",
		"empty/readme.txt":   "no yaml here",
		"app/.hidden/x.yaml": "not: [yaml",
		"notes.txt":          "ignored",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Bundles(dir)
	if err != nil || len(got) != 2 || got[0] != filepath.Join(dir, "a.yaml") || got[1] != filepath.Join(dir, "app") {
		t.Fatalf("Bundles = %v, %v; want a.yaml and app", got, err)
	}
	m, err := Load(filepath.Join(dir, "app"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Workloads) != 1 || len(m.PeerAuthentications) != 1 {
		t.Errorf("app/ loaded %d workloads, %d PAs; want 1 and 1", len(m.Workloads), len(m.PeerAuthentications))
	}
}
