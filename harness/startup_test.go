package harness_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// tenPods is the mesh of the pods issue: 5 sidecar pods, 3 plain pods, an
// ingress and an egress gateway.
func tenPods() string {
	var b strings.Builder
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: s%d}\nspec: {ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]}\n", i)
	}
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: p%d}\nspec: {sidecar: false, ports: [{name: http, port: 8080}]}\n", i)
	}
	for _, g := range []string{"ingress", "egress"} {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: istio-%sgateway, namespace: istio-system, labels: {istio: %sgateway}}\nspec: {gateway: true}\n", g, g)
	}
	return b.String()
}

// The 10-pod mesh comes up and serves; the time it took is logged (a
// figure, not an assertion: see BENCHMARKS.md).
func TestTenPodMeshServes(t *testing.T) {
	m, err := mesh.Parse("ten.yaml", []byte(tenPods()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rt := harness.New(t, m)
	up := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct{ from, url string }{
		{"s1", "http://s2:8080/"}, {"s3", "tcp://s4:9000"}, {"p1", "http://s5:8080/"}, {"s1", "http://p2:8080/"}, {"p3", "http://p1.default.svc.cluster.local:8080/"},
	} {
		p, _ := rt.Pod(c.from)
		res, err := p.Agent.Call(ctx, pod.CallRequest{URL: c.url})
		if err != nil || res.Result != outcome.OK {
			t.Errorf("%s -> %s: %v %+v", c.from, c.url, err, res)
		}
	}
	t.Logf("10-pod mesh (5 sidecar, 3 plain, 2 gateways) up and ACKed in %v; serving %v after start", up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
