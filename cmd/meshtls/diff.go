package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// diffFlags are `meshtls diff`'s options.
type diffFlags struct {
	output   string
	report   string
	parallel int
	verbose  bool
}

// Observed is one side of a changed call.
type Observed struct {
	Result outcome.Result `json:"result"` // "" when the call was not made on this side
	Wire   []outcome.Wire `json:"wire"`
	Peer   string         `json:"peer"`
}

func (o Observed) String() string {
	if o.Result == "" {
		return "(not called)"
	}
	return trace.MatrixCell{Result: o.Result, Wire: o.Wire}.String()
}

// Change is a call whose result, wire or peer differs between BEFORE and AFTER.
type Change struct {
	Check  string   `json:"check"`
	From   string   `json:"from"`
	To     string   `json:"to"`
	Before Observed `json:"before"`
	After  Observed `json:"after"`
	// Broke: the call worked (ok) before and does not after.
	Broke bool `json:"broke"`
}

// DiffSummary is the "summary" object of `diff -o json`.
type DiffSummary struct {
	Calls      int   `json:"calls"`
	Changed    int   `json:"changed"`
	Broke      int   `json:"broke"`
	DurationMS int64 `json:"durationMs"`
}

// diffOutput is the one object `diff -o json` prints: the changes, then
// each side as `run -o json` would print it.
type diffOutput struct {
	Changes []Change    `json:"changes"`
	Before  runOutput   `json:"before"`
	After   runOutput   `json:"after"`
	Summary DiffSummary `json:"summary"`
}

func diffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff [flags] BEFORE AFTER",
		Short: "Show, with real traffic, which calls a config change breaks",
		Long: `Explores BEFORE (every client to every service port, an outside client to
every gateway server; the bundles' own checks too), pushes AFTER's Istio
config to the same pods, explores again, and lists every call whose result,
wire or peer changed. BEFORE and AFTER are files or directories (a directory
is one bundle). Exit status: 0 nothing that worked stopped working, 1 a call
that was ok before is not after, 2 bad input or a set-up failure.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), f, args[0], args[1], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "table", "table or json (json: one object on stdout, nothing else)")
	fl.StringVar(&f.report, "report", "", "write a self-contained HTML report to this file")
	fl.IntVar(&f.parallel, "parallel", 4, "calls made at once")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the runtime's progress on stderr")
	return cmd
}

func runDiff(parent context.Context, f diffFlags, before, after string, stdout, stderr io.Writer) error {
	if err := checkOutputFlags(f.output, f.parallel, f.report); err != nil {
		return err
	}
	var scs []harness.Scenario
	var errs []string
	for i, p := range []string{before, after} {
		s, err := harness.LoadScenario(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		s.Name = []string{"before", "after"}[i]
		scs = append(scs, s)
	}
	if len(errs) > 0 {
		return bad(fmt.Errorf("%s", strings.Join(errs, "\n")))
	}
	exploreScenarios(scs, true, stderr)
	if !harness.SameWorkloads(scs[0].Mesh, scs[1].Mesh) {
		fmt.Fprintln(stderr, "notice: BEFORE and AFTER run different workloads: each gets its own pods")
	}
	results, elapsed, err := execScenarios(parent, runFlags{parallel: f.parallel, verbose: f.verbose}, scs, stderr)
	if err != nil {
		return err
	}
	var sides [2][]*trace.Result
	for _, r := range results {
		i := 0
		if r.Scenario == "after" {
			i = 1
		}
		sides[i] = append(sides[i], r)
	}
	changes, calls := compare(sides[0], sides[1])
	sum := DiffSummary{Calls: calls, Changed: len(changes), DurationMS: elapsed.Milliseconds()}
	for _, c := range changes {
		if c.Broke {
			sum.Broke++
		}
	}
	if f.report != "" {
		if err := writeReport(f.report, scs, results, Summary{DurationMS: sum.DurationMS}, reportChanges(changes)...); err != nil {
			return bad(fmt.Errorf("--report %s: %w", f.report, err))
		}
	}
	notes := stdout
	if f.output == "json" {
		notes = stderr
		out := diffOutput{Changes: changes, Summary: sum,
			Before: runOutput{Checks: sides[0], Matrix: trace.Matrices(sides[0])},
			After:  runOutput{Checks: sides[1], Matrix: trace.Matrices(sides[1])}}
		for i, side := range []*runOutput{&out.Before, &out.After} {
			side.Summary = Summary{Scenarios: 1, Total: len(sides[i]), Reported: len(sides[i])}
			if side.Checks == nil {
				side.Checks = []*trace.Result{}
			}
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, changesText(changes))
		fmt.Fprintf(stdout, "\n%s compared: %d changed, %d broke (%.1fs)\n", plural(calls, "call"), sum.Changed, sum.Broke, elapsed.Seconds())
	}
	if f.report != "" {
		fmt.Fprintf(notes, "report: %s\n", f.report)
	}
	if sum.Broke > 0 {
		return &exitError{code: exitMismatch, err: fmt.Errorf("%d calls that worked before do not after", sum.Broke)}
	}
	return nil
}

// compare pairs the calls of both sides by check name and returns those
// whose result, wire or peer differ, in BEFORE's order then AFTER's new
// calls, and how many distinct calls there were.
func compare(before, after []*trace.Result) ([]Change, int) {
	obs := func(r *trace.Result) Observed {
		if r == nil {
			return Observed{Wire: []outcome.Wire{}}
		}
		return Observed{Result: r.Outcome(), Wire: r.Wire, Peer: r.Peer}
	}
	byName := map[string]*trace.Result{}
	for _, r := range after {
		byName[r.Name] = r
	}
	var out []Change
	seen := map[string]bool{}
	add := func(b, a *trace.Result) {
		r := b
		if r == nil {
			r = a
		}
		ob, oa := obs(b), obs(a)
		if ob.Result == oa.Result && slices.Equal(ob.Wire, oa.Wire) && ob.Peer == oa.Peer {
			return
		}
		to := r.Dest
		if to == "" {
			to = r.To
		}
		out = append(out, Change{Check: r.Name, From: r.From, To: to, Before: ob, After: oa,
			Broke: ob.Result == outcome.OK && oa.Result != outcome.OK})
	}
	for _, b := range before {
		seen[b.Name] = true
		add(b, byName[b.Name])
	}
	for _, a := range after {
		if !seen[a.Name] {
			seen[a.Name] = true
			add(nil, a)
		}
	}
	return out, len(seen)
}

// changesText is the table of changes, e.g.
// "legacy/sleep → b.shop:8080  ok [plaintext] → reset [plaintext]  BROKE".
func changesText(cs []Change) string {
	if len(cs) == 0 {
		return "no call changed\n"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CALL\tBEFORE\t\tAFTER\t\n")
	for _, c := range cs {
		mark := ""
		if c.Broke {
			mark = "BROKE"
		}
		fmt.Fprintf(tw, "%s → %s\t%s\t→\t%s\t%s\n", c.From, c.To, c.Before, c.After, mark)
	}
	_ = tw.Flush()
	return b.String()
}

func reportChanges(cs []Change) []harness.ReportChange {
	out := []harness.ReportChange{}
	for _, c := range cs {
		out = append(out, harness.ReportChange{Call: c.From + " → " + c.To, Before: c.Before.String(), After: c.After.String(), Broke: c.Broke})
	}
	return out
}

// checkOutputFlags checks the flags run and diff share (-o, --parallel,
// --report) before anything starts.
func checkOutputFlags(output string, parallel int, report string) error {
	if output != "table" && output != "json" {
		return bad(fmt.Errorf("-o %q: use table or json", output))
	}
	if parallel < 1 {
		return bad(fmt.Errorf("--parallel %d: give at least 1", parallel))
	}
	if report != "" {
		if err := checkWritable(report); err != nil {
			return bad(fmt.Errorf("--report %s: %w", report, err))
		}
	}
	return nil
}
