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
