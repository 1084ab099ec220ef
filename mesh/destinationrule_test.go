package mesh

import (
	"slices"
	"testing"
)

// Merging, exportTo and workloadSelector of DestinationRules for one host
// (pilot/pkg/model/destination_rule.go mergeDestinationRule,
// push_context.go setDestinationRules / destinationRule, sidecar.go
// SidecarScope.DestinationRule).
func TestDestinationRuleMerge(t *testing.T) {
	svc := `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: server}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a, labels: {app: a}}
spec: {ports: [{name: http, port: 8080}]}
`
	const host = "b.server.svc.cluster.local"
	created := func(ts, name, ns, body string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + ", namespace: " + ns +
			", creationTimestamp: '" + ts + "'}\nspec: " + body + "\n"
	}
	for _, tc := range []struct {
		name, drs string
		client    *Workload
		tls       string   // mode for port 8080, no subset; "" none
		subsets   []string // merged subsets, in order
	}{
		{"subsets concatenated, first top-level policy kept",
			drDoc("z-old", "server", "{host: b, trafficPolicy: {tls: {mode: DISABLE}}, subsets: [{name: v2, labels: {v: '2'}}, {name: v1, labels: {v: x}}]}") +
				drDoc("a-new", "server", "{host: b, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}, subsets: [{name: v1, labels: {v: '1'}}, {name: v3, labels: {v: '3'}}]}"),
			&Workload{Namespace: "client"}, "ISTIO_MUTUAL", []string{"v1", "v3", "v2"}},
		{"the older rule's policy wins over name order",
			created("2024-01-01T00:00:00Z", "z-old", "server", "{host: b, trafficPolicy: {tls: {mode: DISABLE}}}") +
				created("2024-06-01T00:00:00Z", "a-new", "server", "{host: b, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}, subsets: [{name: v1, labels: {v: '1'}}]}"),
			&Workload{Namespace: "client"}, "DISABLE", []string{"v1"}},
		{"a rule without top-level policy takes the next one's",
			drDoc("a", "server", "{host: b, subsets: [{name: v1, labels: {v: '1'}}]}") +
				drDoc("b", "server", "{host: b, trafficPolicy: {tls: {mode: SIMPLE}}}"),
			&Workload{Namespace: "client"}, "SIMPLE", []string{"v1"}},
		{"different exportTo: kept apart, the later one applies",
			drDoc("a", "server", "{host: b, trafficPolicy: {tls: {mode: DISABLE}}, subsets: [{name: v1, labels: {v: '1'}}]}") +
				drDoc("b", "server", "{host: b, exportTo: ['*'], trafficPolicy: {tls: {mode: SIMPLE}}}"),
			&Workload{Namespace: "server"}, "SIMPLE", nil},
		{"exported only to another namespace: not applied in its own",
			drDoc("a", "server", "{host: b, exportTo: [client], trafficPolicy: {tls: {mode: DISABLE}}}"),
			&Workload{Namespace: "server"}, "", nil},
		{"exported only to another namespace: applied there",
			drDoc("a", "server", "{host: b, exportTo: [client], trafficPolicy: {tls: {mode: DISABLE}}}"),
			&Workload{Namespace: "client"}, "DISABLE", nil},
		{"workloadSelector selecting the client wins",
			drDoc("all", "default", "{host: "+host+", trafficPolicy: {tls: {mode: DISABLE}}}") +
				drDoc("sel", "default", "{host: "+host+", workloadSelector: {matchLabels: {app: a}}, trafficPolicy: {tls: {mode: SIMPLE}}}"),
			&Workload{Namespace: "default", Labels: map[string]string{"app": "a"}}, "SIMPLE", nil},
		{"workloadSelector not selecting the client: the catch-all",
			drDoc("all", "default", "{host: "+host+", trafficPolicy: {tls: {mode: DISABLE}}}") +
				drDoc("sel", "default", "{host: "+host+", workloadSelector: {matchLabels: {app: a}}, trafficPolicy: {tls: {mode: SIMPLE}}}"),
			&Workload{Namespace: "default", Labels: map[string]string{"app": "c"}}, "DISABLE", nil},
		{"workloadSelector rules stay in their namespace",
			drDoc("sel", "server", "{host: b, workloadSelector: {matchLabels: {app: a}}, trafficPolicy: {tls: {mode: SIMPLE}}}"),
			&Workload{Namespace: "default", Labels: map[string]string{"app": "a"}}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, svc+tc.drs)
			got := ""
			if tls := m.ClientTLS(host, 8080, "", tc.client); tls != nil {
				got = tls.GetMode().String()
			}
			if got != tc.tls {
				t.Errorf("tls %q, want %q", got, tc.tls)
			}
			var subsets []string
			if dr := m.DestinationRuleFor(host, tc.client); dr != nil {
				for _, s := range dr.Spec.GetSubsets() {
					subsets = append(subsets, s.GetName())
				}
			}
			if !slices.Equal(subsets, tc.subsets) {
				t.Errorf("subsets %v, want %v", subsets, tc.subsets)
			}
		})
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
