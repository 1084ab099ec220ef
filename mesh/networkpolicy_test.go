package mesh

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/pod"
)

// npMesh is a small cluster: namespaces app (label team: app) and ops,
// pods with named ports, and an external server outside the cluster.
const npMesh = `
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {team: ops}}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: app, labels: {app: api}}
spec: {ports: [{name: http, port: 8080}, {name: metrics, port: 9090}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: app, labels: {app: web}}
spec: {ports: [{name: http, port: 8081}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: mon, namespace: ops, labels: {app: mon}}
spec: {sidecar: false, ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: ext, namespace: outside, labels: {app: api}}
spec: {external: true, sidecar: false, hostnames: [ext.example.com], ports: [{name: http, port: 80}]}
`

// npAddrs is an address plan: api .2, web .3, mon .4, ext .5.
var npAddrs = map[string]netip.Addr{
	"app/api": netip.MustParseAddr("10.1.0.2"), "app/web": netip.MustParseAddr("10.1.0.3"),
	"ops/mon": netip.MustParseAddr("10.1.0.4"), "outside/ext": netip.MustParseAddr("10.1.0.5"),
}

func allow(peer, proto string, port, end uint16, except ...string) pod.NetAllow {
	a := pod.NetAllow{Peer: netip.MustParsePrefix(peer), Protocol: proto, Port: port, EndPort: end}
	for _, e := range except {
		a.Except = append(a.Except, netip.MustParsePrefix(e))
	}
	return a
}

func rules(a ...pod.NetAllow) *pod.NetRules {
	if a == nil {
		a = []pod.NetAllow{}
	}
	return &pod.NetRules{Allow: a}
}

// Source: kubernetes.io concepts/services-networking/network-policies
// (isolation, policyTypes default, peers, ports, endPort, named ports).
func TestNetPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, policies, pod string
		want                pod.NetPolicy
	}{
		{"no policy: not isolated", "", "app/api", pod.NetPolicy{}},
		{"a policy of another pod isolates nothing here", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec: {podSelector: {matchLabels: {app: web}}}`, "app/api", pod.NetPolicy{}},
		{"empty podSelector, no rules, no policyTypes: ingress denied, egress open", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: app}
spec: {podSelector: {}}`, "app/api", pod.NetPolicy{Ingress: rules()}},
		{"egress rules without policyTypes isolate egress too", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {}
  egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]`, "app/api", pod.NetPolicy{Ingress: rules(), Egress: rules(allow("10.1.0.3/32", "", 0, 0))}},
		{"policyTypes Egress only", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec: {podSelector: {}, policyTypes: [Egress]}`, "app/web", pod.NetPolicy{Egress: rules()}},
		{"a policy in another namespace never selects", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: ops}
spec: {podSelector: {}}`, "app/api", pod.NetPolicy{}},
		{"podSelector peer: pods of the policy's namespace only", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {}}], ports: [{port: 8080}]}]`, "app/api",
			pod.NetPolicy{Ingress: rules(allow("10.1.0.2/32", "TCP", 8080, 0), allow("10.1.0.3/32", "TCP", 8080, 0))}},
		{"namespaceSelector by the metadata.name label every namespace has", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ops}}}]}]`, "app/api",
			pod.NetPolicy{Ingress: rules(allow("10.1.0.4/32", "", 0, 0))}},
		{"namespaceSelector and podSelector together; matchExpressions", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [ops]}]}
      podSelector: {matchLabels: {app: nobody}}`, "app/api", pod.NetPolicy{Ingress: rules()}},
		{"external workloads are no pods: only an ipBlock reaches them", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}}]
    ports: [{protocol: UDP, port: 53}]
  - to: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.1.0.0/30]}}]
    ports: [{port: 8000, endPort: 8090}]`, "app/web",
			pod.NetPolicy{Egress: rules(allow("10.1.0.0/16", "TCP", 8000, 8090, "10.1.0.0/30"),
				allow("10.1.0.2/32", "UDP", 53, 0), allow("10.1.0.3/32", "UDP", 53, 0), allow("10.1.0.4/32", "UDP", 53, 0))}},
		{"named port, ingress: this pod's container port; unknown name: nothing", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{ports: [{port: metrics}, {port: nope}]}]`, "app/api", pod.NetPolicy{Ingress: rules(allow("0.0.0.0/0", "TCP", 9090, 0))}},
		{"named port, egress: each destination pod's own port of that name", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: ops}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: http}]}]`, "ops/mon",
			pod.NetPolicy{Egress: rules(allow("10.1.0.2/32", "TCP", 8080, 0), allow("10.1.0.3/32", "TCP", 8081, 0), allow("10.1.0.4/32", "TCP", 8080, 0))}},
		{"the union of every selecting policy's rules", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: app}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}, {from: [{ipBlock: {cidr: 192.0.2.0/24}}], ports: [{protocol: SCTP}]}]`, "app/api",
			pod.NetPolicy{Ingress: rules(allow("10.1.0.3/32", "", 0, 0), allow("192.0.2.0/24", "SCTP", 0, 0))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, npMesh+"\n---\n"+tc.policies)
			w, ok := m.Workload(tc.pod)
			if !ok {
				t.Fatalf("no workload %s", tc.pod)
			}
			got, _ := json.Marshal(m.NetPolicy(w, npAddrs))
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("NetPolicy(%s)\n got %s\nwant %s", tc.pod, got, want)
			}
		})
	}
}

// Every namespace carries kubernetes.io/metadata.name, with or without a
// Namespace document.
func TestNamespaceLabels(t *testing.T) {
	m := mustParse(t, npMesh)
	if got := m.NamespaceLabels("ops"); got["team"] != "ops" || got[NamespaceNameLabel] != "ops" {
		t.Errorf("ops: %v", got)
	}
	if got := m.NamespaceLabels("app"); len(got) != 1 || got[NamespaceNameLabel] != "app" {
		t.Errorf("app: %v", got)
	}
}

// What the API server refuses is refused, naming the field.
func TestNetworkPolicyValidation(t *testing.T) {
	for _, tc := range []struct{ spec, field, msg string }{
		{"{podSelector: {}, policyTypes: [Both]}", "spec.policyTypes[0]", "not a policy type"},
		{"{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}", "spec.ingress[0].from[0]", "may not be combined"},
		{"{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}", "spec.ingress[0].from[0].ipBlock.except[0]", "strict subset"},
		{"{podSelector: {}, egress: [{to: [{ipBlock: {cidr: tenslash8}}]}]}", "spec.egress[0].to[0].ipBlock.cidr", "not a CIDR"},
		{"{podSelector: {}, egress: [{ports: [{protocol: ICMP}]}]}", "spec.egress[0].ports[0].protocol", "not a protocol"},
		{"{podSelector: {}, egress: [{ports: [{port: http, endPort: 90}]}]}", "spec.egress[0].ports[0].endPort", "named port"},
		{"{podSelector: {}, egress: [{ports: [{port: 90, endPort: 80}]}]}", "spec.egress[0].ports[0].endPort", "between port"},
		{"{podSelector: {matchExpressions: [{key: a, operator: Maybe}]}}", "spec.podSelector", "operator"},
		{"{podSelector: {}, ingress: [{from: [{}]}]}", "spec.ingress[0].from[0]", "must give"},
	} {
		_, err := Parse("np.yaml", []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: "+tc.spec+"\n"))
		if err == nil || !strings.Contains(err.Error(), "NetworkPolicy default/p: "+tc.field+": ") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("spec %s: got %v, want %s: ...%s...", tc.spec, err, tc.field, tc.msg)
		}
	}
}

// An egress policy that lets a pod reach neither kube-dns nor istiod is
// noticed: meshtls's pods need neither, a cluster's do. The docs page's
// policy (namespaces labelled, UDP 53 and istio-system allowed) is not.
func TestNetworkPolicyPlumbingNotices(t *testing.T) {
	deny := npMesh + `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: app}
spec: {podSelector: {}, policyTypes: [Egress]}`
	m := mustParse(t, deny)
	var got []string
	for _, n := range m.Notices {
		got = append(got, n.Name+": "+n.Message)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"app/api: NetworkPolicy app/deny-egress: isolates its egress and allows no UDP 53 to kube-dns",
		"app/api: NetworkPolicy app/deny-egress: isolates its egress and allows no TCP 15012 to istiod", "app/web: NetworkPolicy app/deny-egress"} {
		if !strings.Contains(all, want) {
			t.Errorf("notices lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "ops/mon") {
		t.Errorf("a pod no egress policy selects is noticed:\n%s", all)
	}
	docs := npMesh + `
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system, labels: {istio: system}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system, labels: {kube-system: "true"}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress-to-istio-system-and-kube-dns, namespace: app}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kube-system: "true"}}}]
    ports: [{protocol: UDP, port: 53}]
  - to: [{namespaceSelector: {matchLabels: {istio: system}}}]`
	for _, n := range mustParse(t, docs).Notices {
		if strings.Contains(n.Message, "NetworkPolicy") {
			t.Errorf("unexpected notice: %s", n.Message)
		}
	}
}

// A policy as kubectl prints it (server-set metadata, the empty status of
// clusters before 1.28, inside a List) loads unchanged.
func TestNetworkPolicyFromClusterDump(t *testing.T) {
	m := mustParse(t, `apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    creationTimestamp: "2026-11-30T09:12:44Z"
    generation: 1
    name: deny
    namespace: app
    resourceVersion: "51217"
    uid: 6f1c2a01-7d1e-4c55-9a3b-0c4e1f2a0001
  spec:
    podSelector: {}
    policyTypes: [Ingress]
  status: {}
`)
	if len(m.NetworkPolicies) != 1 || m.NetworkPolicies[0].Name != "deny" || m.NetworkPolicies[0].Namespace != "app" {
		t.Fatalf("NetworkPolicies: %v", m.NetworkPolicies)
	}
}
