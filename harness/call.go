package harness

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// CallOption shapes a call made with Runtime.Call, or adds to what it
// expects. Options compose: each sets one field of the check.
type CallOption func(*mesh.Check)

// Via dials the gateway workload instead, keeping the URL's host, SNI and path.
func Via(gateway string) CallOption { return func(c *mesh.Check) { c.Via = gateway } }

// WithTLS sets the client's TLS settings (https and tls URLs). With no CA
// named the client trusts mesh.DefaultCheckCAs, as a bundle's check does.
func WithTLS(t mesh.CheckTLS) CallOption {
	return func(c *mesh.Check) {
		if len(t.CA) == 0 {
			t.CA = slices.Clone(mesh.DefaultCheckCAs)
		}
		c.TLS = &t
	}
}

// Options composes options into one, for expectations shared by several
// calls:
//
//	mtlsOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS))
func Options(opts ...CallOption) CallOption {
	return func(c *mesh.Check) {
		for _, o := range opts {
			o(c)
		}
	}
}

func expect(c *mesh.Check) *mesh.Expect {
	if c.Expect == nil {
		c.Expect = &mesh.Expect{}
	}
	return c.Expect
}

// ExpectResult expects the call's result (outcome.OK, outcome.Reset, ...).
func ExpectResult(r outcome.Result) CallOption { return func(c *mesh.Check) { expect(c).Result = r } }

// ExpectNotOK expects the call to fail, whatever the way (outcome.Failed).
func ExpectNotOK() CallOption { return ExpectResult(outcome.Failed) }

// ExpectWire expects one wire form per network hop (outcome.MTLS, ...).
func ExpectWire(w ...outcome.Wire) CallOption { return func(c *mesh.Check) { expect(c).Wire = w } }

// ExpectPeer expects the identity the last hop's receiver verified
// (outcome.PeerNone: none).
func ExpectPeer(id string) CallOption { return func(c *mesh.Check) { expect(c).Peer = id } }

// ExpectReason expects a substring of Envoy's failure reason or flags.
func ExpectReason(s string) CallOption { return func(c *mesh.Check) { expect(c).Reason = s } }

// ExpectHops expects what the outer TLS layer of each network hop shows,
// by position: TLS version, SNI, ALPN offer (empty fields not compared).
func ExpectHops(h ...mesh.HopExpect) CallOption { return func(c *mesh.Check) { expect(c).Hops = h } }

// ExpectServedBy expects the workload (name or namespace/name) whose app
// answered.
func ExpectServedBy(workload string) CallOption {
	return func(c *mesh.Check) { expect(c).ServedBy = workload }
}

// BuildCheck builds the check a call from a workload to a URL makes in m,
// with opts, and validates it as a Check document of a bundle is validated
// (mesh.Mesh.ValidateCheck): the same problems in the same words.
func BuildCheck(m *mesh.Mesh, name, from, to string, opts ...CallOption) (*mesh.Check, error) {
	c := &mesh.Check{Name: name, Namespace: "default", From: from, To: to}
	for _, o := range opts {
		o(c)
	}
	if err := m.ValidateCheck(c); err != nil {
		return nil, err
	}
	return c, nil
}

// CallCheck builds the check Call runs on the running mesh (BuildCheck).
func (r *Runtime) CallCheck(name, from, to string, opts ...CallOption) (*mesh.Check, error) {
	m, _ := r.current()
	return BuildCheck(m, name, from, to, opts...)
}

// Call makes one call from a workload to a URL and fails t when an
// expectation given in opts does not hold, with the trace, as Check does:
//
//	rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/",
//		harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS))
func (r *Runtime) Call(t testing.TB, from, to string, opts ...CallOption) *trace.Result {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	c, err := r.CallCheck(name, from, to, opts...)
	if err != nil {
		t.Fatalf("call %s -> %s: %v", from, to, err)
	}
	return r.Check(t, "", c) // the check's name is the test's
}
