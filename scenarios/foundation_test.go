package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

const twoPods = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}]
`

// One real call through two real sidecars. With no PeerAuthentication the
// sidecars speak mTLS (auto mTLS) and b's sidecar hands b's app the client's
// identity in X-Forwarded-Client-Cert; with DISABLE on b the call is
// plaintext and arrives without it.
// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#auto-mtls
// https://istio.io/latest/docs/reference/config/networking/gateway/ (XFCC is set by the
// inbound HCM: pilot/pkg/networking/core/listener_builder.go, forward_client_cert_details APPEND_FORWARD)
func TestFoundationTwoSidecars(t *testing.T) {
	m := parse(t, twoPods)
	rt := harness.New(t, m)
	const toB = "http://b.default.svc.cluster.local:8080/"

	xfcc := func() string {
		t.Helper()
		a, ok := rt.Pod("a")
		if !ok {
			t.Fatal("no pod a")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		res, err := a.Agent.Call(ctx, pod.CallRequest{URL: toB})
		if err != nil {
			t.Fatal(err)
		}
		if res.Result != outcome.OK || res.Report == nil {
			t.Fatalf("a -> b: result %q, error %q, body %q", res.Result, res.Error, res.Body)
		}
		if res.Report.Workload != "default/b" {
			t.Fatalf("answered by %q, want default/b", res.Report.Workload)
		}
		return strings.Join(res.Report.Headers["X-Forwarded-Client-Cert"], ",")
	}

	rt.Call(t, "a", toB, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS),
		harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/a"), harness.ExpectServedBy("b"))
	if got, want := xfcc(), "URI=spiffe://cluster.local/ns/default/sa/a"; !strings.Contains(got, want) {
		t.Errorf("no PeerAuthentication: b's app got X-Forwarded-Client-Cert %q, want it to carry %q", got, want)
	}

	rt.ApplyConfig(t, `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: default}
spec:
  selector: {matchLabels: {app: b}}
  mtls: {mode: DISABLE}
`)
	rt.Call(t, "a", toB, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	if got := xfcc(); got != "" {
		t.Errorf("PeerAuthentication DISABLE on b: b's app got X-Forwarded-Client-Cert %q, want none", got)
	}
}

func parse(t *testing.T, bundle string) *mesh.Mesh {
	t.Helper()
	m, err := mesh.Parse(t.Name()+".yaml", []byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
