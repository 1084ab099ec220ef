package harness

import (
	"testing"
	"time"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Apply reprograms the NetworkPolicy filter of the pods whose allowed
// traffic changed: a policy added later denies new connections into b,
// and removing it opens b again (its table is removed). c is a plain pod,
// so every call is a new connection (a sidecar's pooled connection, once
// open, stays allowed, as conntrack keeps it in a cluster).
func TestApplyNetworkPolicy(t *testing.T) {
	liveOnly(t)
	const plainC = `
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: c}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
`
	const denyB = `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-b}
spec:
  podSelector: {matchLabels: {app: b}}
`
	open := parseBundle(t, reliabilityTwoPods+plainC)
	denied := parseBundle(t, reliabilityTwoPods+plainC+denyB)
	rt := startLive(t, open)
	cToB := func(want outcome.Result) *mesh.Check {
		return &mesh.Check{Name: "c-to-b-" + string(want), Namespace: "default", From: "c",
			To: "http://b.default.svc.cluster.local:8080/", Expect: &mesh.Expect{Result: want}}
	}
	runCheck(t, rt, cToB(outcome.OK))
	if err := rt.Apply(testCtx(t, time.Minute), denied); err != nil {
		t.Fatal(err)
	}
	runCheck(t, rt, cToB(outcome.Timeout))
	if err := rt.Apply(testCtx(t, time.Minute), parseBundle(t, reliabilityTwoPods+plainC)); err != nil {
		t.Fatal(err)
	}
	runCheck(t, rt, cToB(outcome.OK))
}
