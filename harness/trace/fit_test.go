package trace

import (
	"strings"
	"testing"

	"github.com/meshtls/meshtls/outcome"
)

func TestFitTable(t *testing.T) {
	long := "spiffe://cluster.local/ns/default/sa/a-service-account-with-a-long-name"
	results := []Result{
		{Scenario: "07-a-long-scenario-name", Name: "a-to-b", Result: outcome.OK, Status: 200, Wire: []outcome.Wire{outcome.MTLS, outcome.TLS}, Peer: long, Verdict: outcome.Pass,
			Expected: &Expected{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS, outcome.TLS}, Peer: long}},
		{Scenario: "07-a-long-scenario-name", Name: "b-to-a", Result: outcome.Reset, Reason: "upstream connect error or disconnect/reset before headers. reset reason: connection termination", Verdict: outcome.Fail,
			Expected: &Expected{Result: outcome.OK}},
	}
	full := Table(results)
	if got, fitted := FitTable(results, 0); fitted || got != full {
		t.Fatalf("width 0 must be the full table")
	}
	for _, width := range []int{120, 80, 60} {
		got, fitted := FitTable(results, width)
		if !fitted {
			t.Fatalf("width %d: not fitted, full table is %d wide", width, maxLineWidth(full))
		}
		if n := maxLineWidth(got); n > width {
			t.Errorf("width %d: a line is %d wide:\n%s", width, n, got)
		}
		// Nothing is lost: every part of every cell is still there.
		flat := strings.Join(strings.Fields(got), " ")
		for _, part := range []string{"a-to-b", "b-to-a", "pass", "fail", "[mtls, tls]", "reset", "peer=spiffe://"} {
			if !strings.Contains(flat, part) {
				t.Errorf("width %d: lost %q:\n%s", width, part, got)
			}
		}
	}
	if got, _ := FitTable(results, 60); strings.Contains(got, "SCENARIO") {
		t.Errorf("width 60: the SCENARIO column should be dropped:\n%s", got)
	}
	if got, _ := FitTable(results, 120); !strings.Contains(got, "SCENARIO") {
		t.Errorf("width 120: the SCENARIO column should stay:\n%s", got)
	}
}
