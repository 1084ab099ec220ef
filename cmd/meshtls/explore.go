package main

import (
	"fmt"
	"io"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
)

// exploreScenarios prints each scenario's loading notices and adds the
// explored calls to scenarios that have no Check (or to all with force).
func exploreScenarios(scs []harness.Scenario, force bool, stderr io.Writer) {
	for _, s := range scs {
		printNotices(stderr, s.Mesh)
		if len(s.Mesh.Checks) > 0 && !force {
			continue
		}
		for _, n := range s.Mesh.Explore() {
			fmt.Fprintf(stderr, "notice: %s\n", n)
		}
	}
}

// printTable prints the bundle's checks as a table and each explored
// scenario's reachability matrix (its calls are in the matrix, not the table).
// width > 0 wraps the check table's cells to fit that many columns.
func printTable(w io.Writer, results []*trace.Result, width int) {
	var rows []trace.Result
	for _, r := range results {
		if !r.Explored {
			rows = append(rows, *r)
		}
	}
	if len(rows) > 0 {
		table, fitted := trace.FitTable(rows, width)
		fmt.Fprint(w, table)
		if fitted {
			fmt.Fprintf(w, "(cells wrapped to fit %d columns; -v prints one row per check)\n", width)
		}
	}
	for i, m := range trace.Matrices(results) {
		if i > 0 || len(rows) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprint(w, m.Text())
	}
}
