package mesh

import (
	"fmt"
	"testing"
)

// pa is a PeerAuthentication document; ts "" leaves creationTimestamp out.
func pa(ns, name, ts, mode, selector string) string {
	meta := fmt.Sprintf("{name: %s, namespace: %s", name, ns)
	if ts != "" {
		meta += ", creationTimestamp: '" + ts + "'"
	}
	spec := "mtls: {mode: " + mode + "}"
	if selector != "" {
		spec += ", selector: {matchLabels: {app: " + selector + "}}"
	}
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: " + meta + "}\nspec: {" + spec + "}\n---\n"
}

const orderServer = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports: [{name: http, port: 8080}]
`

// Same-level policies: the oldest wins whatever the file order; equal (or
// missing) timestamps fall back to name, then namespace
// (pilot/pkg/model/config.go configCompareByCreationTime,
// pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication).
func TestSameLevelOrder(t *testing.T) {
	for _, tc := range []struct {
		name, docs string
		want       MTLSMode
	}{
		{"older namespace policy listed last wins",
			pa("default", "a-new", "2024-05-02T00:00:00Z", "PERMISSIVE", "") + pa("default", "z-old", "2024-05-01T00:00:00Z", "STRICT", ""), ModeStrict},
		{"no timestamps: name order, not file order",
			pa("default", "zz", "", "PERMISSIVE", "") + pa("default", "aa", "", "STRICT", ""), ModeStrict},
		{"equal timestamps: name order",
			pa("default", "b", "2024-05-01T00:00:00Z", "DISABLE", "") + pa("default", "a", "2024-05-01T00:00:00Z", "STRICT", ""), ModeStrict},
		{"a missing timestamp is older than a given one",
			pa("default", "a", "2024-05-01T00:00:00Z", "STRICT", "") + pa("default", "b", "", "DISABLE", ""), ModeDisable},
		{"mesh level: oldest in the root namespace",
			pa(RootNamespace, "a", "2024-05-03T00:00:00Z", "DISABLE", "") + pa(RootNamespace, "b", "2024-05-01T00:00:00Z", "STRICT", ""), ModeStrict},
		{"workload level: oldest matching selector",
			pa("default", "a", "2024-05-03T00:00:00Z", "DISABLE", "server") + pa("default", "b", "2024-05-01T00:00:00Z", "STRICT", "server"), ModeStrict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, tc.docs+orderServer)
			w, _ := m.Workload("server")
			if got := m.EffectiveMTLS(w, 8080); got != tc.want {
				t.Errorf("EffectiveMTLS = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIstioOrderSortsKinds(t *testing.T) {
	m := mustParse(t, orderServer+`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: default}
spec: {host: server}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: other}
spec: {host: server.default.svc.cluster.local}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec: {host: server}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: z, namespace: default, creationTimestamp: '2020-01-01T00:00:00Z'}
spec: {host: server}
`)
	var got []string
	for _, dr := range m.DestinationRules {
		got = append(got, dr.Namespace+"/"+dr.Name)
	}
	want := "[default/a other/a default/b default/z]"
	if fmt.Sprint(got) != want {
		t.Errorf("order %v, want %s (missing timestamps, the oldest, first; then name, then namespace)", got, want)
	}
}
