package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// The live suite is rows of data: a row is Istio config pushed to pods that
// are already running, plus the calls to make under it and what each must
// show. A test function starts its pods once (harness.New) and every row is
// an rt.Apply push, so adding a case is adding a row.
//
// Run one group or one row with the usual filters, e.g.
//
//	go test ./scenarios/ -run 'TestSidecarMatrix/1-strict'

// row is one configuration and the calls made under it.
type row struct {
	name string
	// cite is the Istio doc URL or istio/istio source path the expectations
	// come from; it is printed when a call's expectation does not hold.
	cite   string
	config string // Istio config (and Services) on top of the test's workloads: rt.ApplyConfig
	// setup, when set, runs before the row's push, e.g. to swap a workload
	// certificate in rt.Certs() (the push then carries the new secret).
	setup  func(t *testing.T, rt *harness.Runtime)
	calls  []callSpec
	checks []check
}

// callSpec is one call of a row: rt.Call's arguments.
type callSpec struct {
	name, from, to string
	opts           []harness.CallOption
}

// call is a row's call named name, from a workload (name or namespace/name)
// to a URL (http, https, tcp, tls), with the harness's options: what it
// expects (harness.ExpectResult, ExpectWire, ...), harness.Via a gateway,
// harness.WithTLS.
func call(name, from, to string, opts ...harness.CallOption) callSpec {
	return callSpec{name: name, from: from, to: to, opts: opts}
}

// check is one call and its expected outcome.
type check struct {
	name string
	from string // workload ref: name or namespace/name
	to   string // http://, https://, tcp://, tls:// URL
	via  string // gateway workload ref to dial instead, keeping host and SNI
	tls  *mesh.CheckTLS
	want mesh.Expect
	// fails: the call must not succeed, whatever the failure looks like.
	// For refusals whose form is a race, e.g. a client certificate rejected
	// after a TLS 1.3 client already considers its handshake done (a
	// tls-error when the alert arrives before the request is written, a
	// reset when after); leave want.Result empty then.
	fails bool
}

// expect builds an expectation: result, wire (one entry per network hop),
// peer (verified on the last hop; "none" for none, "" not compared) and a
// reason substring ("" not compared).
func expect(result outcome.Result, wire []outcome.Wire, peer, reason string) mesh.Expect {
	return mesh.Expect{Result: result, Wire: wire, Peer: peer, Reason: reason}
}

// w is shorthand for a wire list.
func w(hops ...outcome.Wire) []outcome.Wire { return hops }

func sni(s string) *string { return &s }

// rowTimeout bounds one row: the push, its ACKs and every call.
const rowTimeout = 2 * time.Minute

// runRows starts the workloads once and runs the rows in order, each as a
// subtest that pushes its config and then runs its checks in parallel
// (checks are independent: each one's evidence is matched by its own
// connections).
func runRows(t *testing.T, workloads string, rows []row) {
	t.Helper()
	rt := harness.New(t, parse(t, workloads))
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.setup != nil {
				r.setup(t, rt)
			}
			rt.ApplyConfig(t, r.config)
			for _, c := range r.calls {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if res := rt.Call(t, c.from, c.to, c.opts...); !res.Passed() {
						t.Log("source: " + r.cite)
					}
				})
			}
			// Parallel checks run after this function returns: the
			// context lives until the row's cleanup, not this scope.
			ctx, cancel := context.WithTimeout(t.Context(), rowTimeout)
			t.Cleanup(cancel)
			for _, c := range r.checks {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					runCheck(t, ctx, rt, r, c)
				})
			}
		})
	}
}

func runCheck(t *testing.T, ctx context.Context, rt *harness.Runtime, r row, c check) {
	want := c.want
	mc := &mesh.Check{Name: c.name, Namespace: "default", From: c.from, To: c.to, Via: c.via, TLS: c.tls, Expect: &want}
	res, err := rt.Run(ctx, r.name, mc)
	if err != nil {
		t.Fatal(err)
	}
	if c.fails && res.Result == outcome.OK {
		res.Verdict = outcome.Fail
		res.Mismatches = append(res.Mismatches, "result: expected a failure, observed ok")
	}
	if res.Passed() {
		// MESHTLS_EXPLAIN=1 prints every trace, not only failures.
		if os.Getenv("MESHTLS_EXPLAIN") != "" {
			t.Log(res.Explain())
		}
		return
	}
	msg := res.Explain()
	if dir, err := rt.SaveArtifacts(ctx, filepath.Join(artifactRoot(t), sanitize(t.Name()))); err == nil {
		msg += "\n  artifacts: " + dir
	}
	t.Errorf("%s\n  source: %s", msg, r.cite)
}

// artifactRoot is where failed checks leave config dumps, logs and captures:
// $MESHTLS_ARTIFACTS, else the test's artifact dir.
func artifactRoot(t *testing.T) string {
	if d := os.Getenv("MESHTLS_ARTIFACTS"); d != "" {
		return d
	}
	return t.ArtifactDir()
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

const clientID = "spiffe://cluster.local/ns/default/sa/client"

// meshPA is a mesh-wide PeerAuthentication (root namespace, no selector).
func meshPA(mode string) string {
	return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: ` + mode + `}
---
`
}

// meshDR is a DestinationRule for every host, as the reachability test
// installs it in the root namespace.
func meshDR(mode string) string {
	return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: default, namespace: istio-system}
spec:
  host: "*"
  trafficPolicy:
    tls: {mode: ` + mode + `}
---
`
}
