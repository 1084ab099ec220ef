package trace

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/meshtls/meshtls/outcome"
)

// Matrix is the observed reachability of one scenario's explored calls:
// source workload × destination, each cell the call's outcome and wire
// (`meshtls run -o json` "matrix").
type Matrix struct {
	Scenario     string       `json:"scenario"`
	Sources      []string     `json:"sources"`
	Destinations []string     `json:"destinations"`
	Cells        []MatrixCell `json:"cells"`
}

// MatrixCell is one explored call.
type MatrixCell struct {
	From   string         `json:"from"`
	To     string         `json:"to"`
	Check  string         `json:"check"`
	Result outcome.Result `json:"result"` // ok | http-NNN | reset | refused | timeout | tls-error
	Wire   []outcome.Wire `json:"wire"`
	Peer   string         `json:"peer"`
}

// Outcome is the call's result with a non-2xx HTTP status spelled
// http-NNN, as expectations write it.
func (r *Result) Outcome() outcome.Result {
	if r.Result == outcome.OK && r.Status != 0 && r.Status/100 != 2 {
		return outcome.HTTP(r.Status)
	}
	return r.Result
}

// String is the short text of a call: outcome and wire, e.g. "ok [mtls]".
func (c MatrixCell) String() string {
	w := c.Wire
	if len(w) == 0 {
		w = []outcome.Wire{outcome.None}
	}
	return string(c.Result) + " [" + outcome.Join(w, ",") + "]"
}

// Matrices builds one Matrix per scenario that has explored calls, in the
// order results come.
func Matrices(results []*Result) []Matrix {
	var out []Matrix
	idx := map[string]int{}
	for _, r := range results {
		if !r.Explored {
			continue
		}
		i, ok := idx[r.Scenario]
		if !ok {
			i = len(out)
			idx[r.Scenario] = i
			out = append(out, Matrix{Scenario: r.Scenario, Sources: []string{}, Destinations: []string{}})
		}
		m := &out[i]
		if !contains(m.Sources, r.From) {
			m.Sources = append(m.Sources, r.From)
		}
		if !contains(m.Destinations, r.Dest) {
			m.Destinations = append(m.Destinations, r.Dest)
		}
		wire := r.Wire
		if wire == nil {
			wire = []outcome.Wire{}
		}
		m.Cells = append(m.Cells, MatrixCell{From: r.From, To: r.Dest, Check: r.Name, Result: r.Outcome(), Wire: wire, Peer: normPeer(r.Peer)})
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Text renders the matrix as a table: one row per destination, one column
// per source (destinations outnumber sources), "-" where no call was made.
func (m Matrix) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reachability (scenario %s): result [wire per hop]\n", m.Scenario)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TO \\ FROM\t%s\n", strings.Join(m.Sources, "\t"))
	cell := map[[2]string]string{}
	for _, c := range m.Cells {
		cell[[2]string{c.From, c.To}] = c.String()
	}
	for _, d := range m.Destinations {
		row := []string{d}
		for _, s := range m.Sources {
			v, ok := cell[[2]string{s, d}]
			if !ok {
				v = "-"
			}
			row = append(row, v)
		}
		fmt.Fprintf(tw, "%s\n", strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	return b.String()
}
