package trace

import (
	"strings"
	"testing"

	"github.com/meshtls/meshtls/outcome"
)

func TestMatrices(t *testing.T) {
	rs := []*Result{
		{Scenario: "s", Name: "written", From: "a", Result: outcome.OK},
		{Scenario: "s", Name: "e1", From: "legacy/sleep", Dest: "b.shop:8080", Explored: true, Result: outcome.OK, Status: 200, Wire: []outcome.Wire{outcome.Plaintext}},
		{Scenario: "s", Name: "e2", From: "shop/a", Dest: "b.shop:8080", Explored: true, Result: outcome.OK, Status: 503, Wire: []outcome.Wire{outcome.TLS}, Peer: ""},
		{Scenario: "s", Name: "e3", From: "shop/a", Dest: "c.shop:80", Explored: true, Result: outcome.Reset},
	}
	ms := Matrices(rs)
	if len(ms) != 1 || strings.Join(ms[0].Sources, ",") != "legacy/sleep,shop/a" || strings.Join(ms[0].Destinations, ",") != "b.shop:8080,c.shop:80" || len(ms[0].Cells) != 3 {
		t.Fatalf("matrices %+v", ms)
	}
	if c := ms[0].Cells[1]; c.Result != "http-503" || c.Peer != outcome.PeerNone || c.String() != "http-503 [tls]" {
		t.Errorf("cell %+v", c)
	}
	text := ms[0].Text()
	for _, want := range []string{"TO \\ FROM", "b.shop:8080  ok [plaintext]", "c.shop:80    -               reset [none]"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
