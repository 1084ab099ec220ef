package trace

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Predicate is one expectation about a Result: nil when it holds, else an
// error saying what was expected and what was observed. Predicates compose
// (All), in the manner of Istio's echo checks
// (istio/istio pkg/test/framework/components/echo/check).
type Predicate func(*Result) error

// All holds when every predicate holds; its error lists every failure.
func All(ps ...Predicate) Predicate {
	return func(r *Result) error {
		var msgs []string
		for _, p := range ps {
			if err := p(r); err != nil {
				msgs = append(msgs, err.Error())
			}
		}
		if len(msgs) > 0 {
			return fmt.Errorf("%s", strings.Join(msgs, "\n"))
		}
		return nil
	}
}

// ResultIs compares the outcome exactly; for http-NNN it compares the HTTP
// status, so http-200 holds for an ok answer with status 200.
func ResultIs(want outcome.Result) Predicate {
	return func(r *Result) error {
		if n, ok := want.HTTPStatus(); ok {
			if r.Status == n {
				return nil
			}
			return fmt.Errorf("result: expected %s, observed %s", want, observedResult(r))
		}
		if r.Result == want || (want == outcome.Failed && r.Result != outcome.OK) {
			return nil
		}
		return fmt.Errorf("result: expected %s, observed %s", want, observedResult(r))
	}
}

// WireIs compares the per-hop wire forms element by element; the number of
// hops must match.
func WireIs(want []outcome.Wire) Predicate {
	return func(r *Result) error {
		if len(want) != len(r.Wire) {
			return fmt.Errorf("wire: expected %d hop(s) %v, observed %d hop(s) %v", len(want), want, len(r.Wire), r.Wire)
		}
		var diffs []string
		for i := range want {
			if want[i] != r.Wire[i] {
				diffs = append(diffs, fmt.Sprintf("hop %d expected %s, observed %s", i+1, want[i], r.Wire[i]))
			}
		}
		if len(diffs) > 0 {
			return fmt.Errorf("wire: %s (expected %v, observed %v)", strings.Join(diffs, "; "), want, r.Wire)
		}
		return nil
	}
}

// PeerIs compares the identity verified on the last hop; "none" and ""
// both mean no client certificate was verified.
func PeerIs(want string) Predicate {
	return func(r *Result) error {
		if normPeer(want) == normPeer(r.Peer) {
			return nil
		}
		return fmt.Errorf("peer: expected %s, observed %s", normPeer(want), normPeer(r.Peer))
	}
}

// ReasonContains holds when the observed reason contains sub.
func ReasonContains(sub string) Predicate {
	return func(r *Result) error {
		if strings.Contains(r.Reason, sub) {
			return nil
		}
		obs := r.Reason
		if obs == "" {
			obs = "(none)"
		}
		return fmt.Errorf("reason: expected to contain %q, observed %q", sub, obs)
	}
}

// HopsAre compares the outer TLS layer of each hop, by position, with the
// expected version, SNI and ALPN offer; empty fields are not compared and
// "none" means no TLS (version) or no SNI.
func HopsAre(want []mesh.HopExpect) Predicate {
	return func(r *Result) error {
		var diffs []string
		for i, w := range want {
			if i >= len(r.Hops) {
				diffs = append(diffs, fmt.Sprintf("hop %d expected, observed %d hop(s)", i+1, len(r.Hops)))
				break
			}
			var outer Layer
			if ls := r.Hops[i].Layers; len(ls) > 0 && ls[0].Kind == KindTLS {
				outer = ls[0]
			}
			version, sni := outer.Version, outer.SNI
			if outer.Kind != KindTLS {
				version = outcome.Absent
			}
			if sni == "" {
				sni = outcome.Absent
			}
			if w.TLSVersion != "" && w.TLSVersion != version {
				diffs = append(diffs, fmt.Sprintf("hop %d TLS version expected %s, observed %s", i+1, w.TLSVersion, orUnknown(version)))
			}
			if w.SNI != "" && w.SNI != sni {
				diffs = append(diffs, fmt.Sprintf("hop %d SNI expected %s, observed %s", i+1, w.SNI, sni))
			}
			if w.ALPN != nil && !slices.Equal(w.ALPN, outer.ALPN) {
				diffs = append(diffs, fmt.Sprintf("hop %d ALPN offer expected %v, observed %v", i+1, w.ALPN, outer.ALPN))
			}
		}
		if len(diffs) > 0 {
			return fmt.Errorf("hops: %s", strings.Join(diffs, "; "))
		}
		return nil
	}
}

// ServedBy holds when the last hop ends at the workload want (namespace/name;
// a bare name means the default namespace).
func ServedBy(want string) Predicate {
	if !strings.Contains(want, "/") {
		want = "default/" + want
	}
	return func(r *Result) error {
		got := ""
		if len(r.Hops) > 0 {
			got = r.Hops[len(r.Hops)-1].To
		}
		if got == want {
			return nil
		}
		return fmt.Errorf("servedBy: expected %s, observed %s", want, orUnknown(got))
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// FromExpect turns a check's expectation into predicates; empty fields are
// not compared.
func FromExpect(exp *mesh.Expect) []Predicate {
	if exp == nil {
		return nil
	}
	var ps []Predicate
	if exp.Result != "" {
		ps = append(ps, ResultIs(exp.Result))
	}
	if len(exp.Wire) > 0 {
		ps = append(ps, WireIs(exp.Wire))
	}
	if exp.Peer != "" {
		ps = append(ps, PeerIs(exp.Peer))
	}
	if exp.Reason != "" {
		ps = append(ps, ReasonContains(exp.Reason))
	}
	if len(exp.Hops) > 0 {
		ps = append(ps, HopsAre(exp.Hops))
	}
	if exp.ServedBy != "" {
		ps = append(ps, ServedBy(exp.ServedBy))
	}
	return ps
}

// Evaluate compares res with exp and sets Expected, Verdict and Mismatches:
// outcome.Report without an expectation, else outcome.Pass or outcome.Fail.
func Evaluate(res *Result, exp *mesh.Expect) {
	res.Mismatches = nil
	if exp == nil {
		res.Expected, res.Verdict = nil, outcome.Report
		return
	}
	res.Expected = &Expected{Result: exp.Result, Wire: exp.Wire, Peer: exp.Peer, Reason: exp.Reason, ServedBy: exp.ServedBy}
	for _, h := range exp.Hops {
		res.Expected.Hops = append(res.Expected.Hops, HopExpected(h))
	}
	for _, p := range FromExpect(exp) {
		if err := p(res); err != nil {
			res.Mismatches = append(res.Mismatches, err.Error())
		}
	}
	res.Verdict = outcome.Pass
	if len(res.Mismatches) > 0 {
		res.Verdict = outcome.Fail
	}
}

// Passed reports whether the result met its expectation (or had none).
func (r *Result) Passed() bool { return r.Verdict != outcome.Fail }

func normPeer(p string) string {
	if p == "" {
		return outcome.PeerNone
	}
	return p
}

func observedResult(r *Result) string {
	if _, isHTTP := r.Result.HTTPStatus(); r.Status != 0 && !isHTTP {
		return fmt.Sprintf("%s (status %d)", r.Result, r.Status)
	}
	return string(r.Result)
}
