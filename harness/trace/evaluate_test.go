package trace

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

func sample() *Result {
	return &Result{
		Scenario: "s", Name: "a-to-b", From: "a", To: "http://b:8080/",
		Result: outcome.HTTP(503), Status: 503, Wire: []outcome.Wire{outcome.Plaintext}, Peer: outcome.PeerNone, Reason: "UF; connection reset",
		Hops: []Hop{{From: idA, To: idB, Src: ipA + ":1", Dst: ipB + ":8080", Wire: outcome.Plaintext,
			Layers: []Layer{{Kind: KindPlaintext}}, Sources: []string{"capture:" + idA}, Flags: "UF", FailureReason: "UF"}},
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name       string
		exp        *mesh.Expect
		verdict    outcome.Verdict
		mismatches []string // substrings, one per expected mismatch
	}{
		{name: "no expectation reports", exp: nil, verdict: outcome.Report},
		{name: "empty expectation passes", exp: &mesh.Expect{}, verdict: outcome.Pass},
		{name: "all hold", exp: &mesh.Expect{Result: outcome.HTTP(503), Wire: []outcome.Wire{outcome.Plaintext}, Peer: outcome.PeerNone, Reason: "UF"}, verdict: outcome.Pass},
		{name: "result differs", exp: &mesh.Expect{Result: outcome.OK}, verdict: outcome.Fail,
			mismatches: []string{"result: expected ok, observed http-503"}},
		{name: "status differs", exp: &mesh.Expect{Result: outcome.HTTP(404)}, verdict: outcome.Fail,
			mismatches: []string{"result: expected http-404, observed http-503"}},
		{name: "wire element differs", exp: &mesh.Expect{Wire: []outcome.Wire{outcome.MTLS}}, verdict: outcome.Fail,
			mismatches: []string{"hop 1 expected mtls, observed plaintext"}},
		{name: "wire length differs", exp: &mesh.Expect{Wire: []outcome.Wire{outcome.TLS, outcome.MTLS}}, verdict: outcome.Fail,
			mismatches: []string{"expected 2 hop(s)"}},
		{name: "peer differs", exp: &mesh.Expect{Peer: spiffeA}, verdict: outcome.Fail,
			mismatches: []string{"peer: expected " + spiffeA + ", observed none"}},
		{name: "reason missing", exp: &mesh.Expect{Reason: "CERTIFICATE_VERIFY_FAILED"}, verdict: outcome.Fail,
			mismatches: []string{`reason: expected to contain "CERTIFICATE_VERIFY_FAILED"`}},
		{name: "several mismatches", exp: &mesh.Expect{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS}, Peer: spiffeA}, verdict: outcome.Fail,
			mismatches: []string{"result:", "wire:", "peer:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			Evaluate(r, tt.exp)
			if r.Verdict != tt.verdict {
				t.Errorf("verdict = %q, want %q", r.Verdict, tt.verdict)
			}
			if len(r.Mismatches) != len(tt.mismatches) {
				t.Fatalf("mismatches = %q, want %d", r.Mismatches, len(tt.mismatches))
			}
			for i, want := range tt.mismatches {
				if !strings.Contains(r.Mismatches[i], want) {
					t.Errorf("mismatch %d = %q, want it to contain %q", i, r.Mismatches[i], want)
				}
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	ok := &Result{Result: outcome.OK, Status: 200, Wire: []outcome.Wire{outcome.MTLS}, Peer: ""}
	tlsHop := &Result{Result: outcome.OK, Hops: []Hop{{Layers: []Layer{{Kind: KindTLS, Version: "TLSv1.3", SNI: "b.example.com", ALPN: []string{"h2"}}}}}}
	tests := []struct {
		name string
		p    Predicate
		r    *Result
		hold bool
	}{
		{"http-200 compares status", ResultIs(outcome.HTTP(200)), ok, true},
		{"ok is exact", ResultIs(outcome.OK), ok, true},
		{"reset is not ok", ResultIs(outcome.Reset), ok, false},
		{"empty peer is none", PeerIs("none"), ok, true},
		{"none expected, one observed", PeerIs("none"), &Result{Peer: spiffeA}, false},
		{"wire exact", WireIs([]outcome.Wire{outcome.MTLS}), ok, true},
		{"wire none vs empty", WireIs([]outcome.Wire{outcome.None}), &Result{}, false},
		{"all holds", All(ResultIs(outcome.OK), WireIs([]outcome.Wire{outcome.MTLS})), ok, true},
		{"all fails on one", All(ResultIs(outcome.OK), PeerIs(spiffeB)), ok, false},
		{"reason substring", ReasonContains("VERIFY"), &Result{Reason: "UF; CERTIFICATE_VERIFY_FAILED"}, true},
		{"fail holds for reset", ResultIs(outcome.Failed), &Result{Result: outcome.Reset}, true},
		{"fail holds for http-503", ResultIs(outcome.Failed), &Result{Result: outcome.HTTP(503), Status: 503}, true},
		{"fail does not hold for ok", ResultIs(outcome.Failed), ok, false},
		{"hop tls fields hold", HopsAre([]mesh.HopExpect{{TLSVersion: "TLSv1.3", SNI: "b.example.com", ALPN: []string{"h2"}}}), tlsHop, true},
		{"hop version differs", HopsAre([]mesh.HopExpect{{TLSVersion: "TLSv1.2"}}), tlsHop, false},
		{"hop sni differs", HopsAre([]mesh.HopExpect{{SNI: "none"}}), tlsHop, false},
		{"hop alpn differs", HopsAre([]mesh.HopExpect{{ALPN: []string{"http/1.1"}}}), tlsHop, false},
		{"empty hop entry skips", HopsAre([]mesh.HopExpect{{}}), tlsHop, true},
		{"plaintext hop is version none", HopsAre([]mesh.HopExpect{{TLSVersion: "none", SNI: "none"}}), sample(), true},
		{"served by the last hop's end", ServedBy("b"), sample(), true},
		{"served by another", ServedBy("default/a"), sample(), false},
		{"more hops expected than seen", HopsAre([]mesh.HopExpect{{}, {TLSVersion: "TLSv1.3"}}), tlsHop, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p(tt.r); (err == nil) != tt.hold {
				t.Errorf("holds = %v (err %v), want %v", err == nil, err, tt.hold)
			}
		})
	}
}

func TestExplainAndTable(t *testing.T) {
	r := sample()
	Evaluate(r, &mesh.Expect{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS}, Peer: spiffeA})
	out := r.Explain()
	for _, want := range []string{
		"check a-to-b (scenario s): FAIL",
		"expected", "observed",
		"[mtls]", "[plaintext]",
		"mismatches:",
		"1. default/a (10.0.0.2:1) -> default/b (10.0.0.3:8080)  plaintext",
		"flags: UF",
		"evidence: capture:default/a",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %d has trailing spaces: %q", i+1, line)
		}
	}

	other := sample()
	other.Name = "b-report"
	Evaluate(other, nil)
	tab := Table([]Result{*r, *other})
	lines := strings.Split(strings.TrimRight(tab, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SCENARIO") {
		t.Fatalf("table:\n%s", tab)
	}
	if !strings.Contains(lines[1], "ok [mtls] peer="+spiffeA) || !strings.HasSuffix(lines[1], "fail") {
		t.Errorf("row 1 = %q", lines[1])
	}
	if !strings.Contains(lines[2], " - ") || !strings.HasSuffix(lines[2], "report") {
		t.Errorf("row 2 = %q", lines[2])
	}
}

// The -o json contract (docs/bundles.md): these keys must be present.
func TestResultJSONKeys(t *testing.T) {
	r := sample()
	Evaluate(r, nil)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "name", "from", "to", "result", "status", "wire", "peer", "reason", "verdict", "hops"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}
