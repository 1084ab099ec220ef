package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/crosscheck"
	"github.com/meshtls/meshtls/envoybin"
	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// exitInterrupted is the shell's convention for a run stopped by a signal
// (128 + SIGINT); everything the run made has been removed by then.
const exitInterrupted = 130

// runFlags are `meshtls run`'s options.
type runFlags struct {
	output    string
	report    string
	artifacts string
	parallel  int
	verbose   bool
	envoy     string // --envoy-version
	junit     string
	explore   bool
	// controlPlane: "meshtls" (the translator) or "istio" (istiod's own
	// config, from the oracle program; docs/oracle.md).
	controlPlane string
	generator    harness.ConfigGenerator // set from controlPlane by runRun
}

// Summary is the "summary" object of `run -o json` (docs/bundles.md).
type Summary struct {
	Total      int   `json:"total"`
	Passed     int   `json:"passed"`
	Failed     int   `json:"failed"`
	Reported   int   `json:"reported"`
	Scenarios  int   `json:"scenarios"`
	DurationMS int64 `json:"durationMs"`
}

// runOutput is the one object `run -o json` prints.
type runOutput struct {
	Checks  []*trace.Result `json:"checks"`
	Summary Summary         `json:"summary"`
	// Matrix: per scenario with explored calls, its reachability matrix.
	Matrix []trace.Matrix `json:"matrix,omitempty"`
}

func runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] FILE|DIR...",
		Short: "Run bundles on real Envoy proxies and check every expectation",
		Long: `Each file is one scenario (a directory stands for its *.yaml files).
Every file is validated before any container starts. Scenarios that declare
the same workloads share pods; between them only the Istio config is pushed.

Exit status: 0 every expectation held, 1 one did not, 2 bad input or a set-up
failure, 130 interrupted (everything the run made is removed first).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "table", "table or json (json: one object on stdout, nothing else)")
	fl.StringVar(&f.report, "report", "", "write a self-contained HTML report to this file")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML to this file (one testsuite per scenario, one testcase per check)")
	fl.StringVar(&f.artifacts, "artifacts", "", "keep the evidence of failed checks (config dumps, ssl stats, access logs, pcaps) under this directory")
	fl.IntVar(&f.parallel, "parallel", 4, "checks run at once within a scenario")
	fl.StringVar(&f.envoy, "envoy-version", "", "run this pinned Envoy release from the user cache (meshtls setup --envoy-version V installs it; default: ENVOY_VERSION, else the Envoy found)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the runtime's progress (image builds, pods) on stderr, and the table unwrapped")
	fl.BoolVar(&f.explore, "explore", false, "also generate calls from every client to every service port and gateway server (bundles without checks are always explored)")
	fl.StringVar(&f.controlPlane, "control-plane", "meshtls", "who builds the proxies' config: meshtls (its translator) or istio (istiod's own config generator, the "+crosscheck.OracleBinary+" program: $MESHTLS_ORACLE, beside meshtls or in ./bin; docs/oracle.md)")
	return cmd
}

func runRun(parent context.Context, f runFlags, args []string, stdout, stderr io.Writer) error {
	if err := checkOutputFlags(f.output, f.parallel, f.report); err != nil {
		return err
	}
	if f.junit != "" {
		if err := checkFolder(f.junit); err != nil {
			return bad(fmt.Errorf("--junit %s: %w", f.junit, err))
		}
	}
	if f.artifacts != "" {
		abs, err := filepath.Abs(f.artifacts)
		if err != nil {
			return bad(fmt.Errorf("--artifacts %s: %w", f.artifacts, err))
		}
		f.artifacts = abs
	}
	if v := envoybin.Requested(f.envoy); v != "" {
		if err := envoybin.Check(v); err != nil {
			return bad(fmt.Errorf("--envoy-version: %w", err))
		}
	}
	if err := setControlPlane(&f); err != nil {
		return bad(err)
	}
	// Bad input never starts a container: every file is validated first.
	scs, err := harness.LoadScenarios(args...)
	if err != nil {
		return bad(err)
	}
	exploreScenarios(scs, f.explore, stderr)

	results, elapsed, err := execScenarios(parent, f, scs, stderr)
	if err != nil {
		return err
	}

	sum := Summary{Scenarios: len(scs), DurationMS: elapsed.Milliseconds(), Total: len(results)}
	for _, r := range results {
		switch r.Verdict {
		case outcome.Pass:
			sum.Passed++
		case outcome.Fail:
			sum.Failed++
		default:
			sum.Reported++
		}
	}

	if f.report != "" {
		if err := writeReport(f.report, scs, results, sum); err != nil {
			return bad(fmt.Errorf("--report %s: %w", f.report, err))
		}
	}

	if f.junit != "" {
		if err := writeJUnit(f.junit, scs, results, sum); err != nil {
			return bad(fmt.Errorf("--junit %s: %w", f.junit, err))
		}
	}

	// Human notes go to stdout in table mode, to stderr in json mode (stdout
	// then holds exactly one JSON object).
	notes := stdout
	if f.output == "json" {
		notes = stderr
		if results == nil {
			results = []*trace.Result{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runOutput{Checks: results, Summary: sum, Matrix: trace.Matrices(results)}); err != nil {
			return err
		}
	} else {
		width := tableWidth(stdout)
		if f.verbose {
			width = 0
		}
		printTable(stdout, results, width)
		for _, r := range results {
			if r.Verdict == outcome.Fail {
				fmt.Fprintf(stdout, "\n%s", r.Explain())
			}
		}
		fmt.Fprintf(stdout, "\n%s in %s: %d passed, %d failed, %d reported (%.1fs)\n",
			plural(sum.Total, "check"), plural(sum.Scenarios, "scenario"), sum.Passed, sum.Failed, sum.Reported, elapsed.Seconds())
	}
	seen := map[string]bool{}
	for _, r := range results {
		if r.Artifacts != "" && !seen[r.Artifacts] {
			seen[r.Artifacts] = true
			fmt.Fprintf(notes, "evidence of failed checks in scenario %s: %s\n", r.Scenario, r.Artifacts)
		}
	}
	if f.report != "" {
		fmt.Fprintf(notes, "report: %s\n", f.report)
	}
	if f.junit != "" {
		fmt.Fprintf(notes, "junit: %s\n", f.junit)
	}
	if sum.Failed > 0 {
		return &exitError{code: exitMismatch, err: fmt.Errorf("%d of %d checks did not meet their expectation", sum.Failed, sum.Total)}
	}
	return nil
}

// execScenarios runs loaded scenarios as `run` does (interrupts, progress,
// MESHTLS_KEEP) and returns every result, with lists never null as the
// JSON contract wants.
func execScenarios(parent context.Context, f runFlags, scs []harness.Scenario, stderr io.Writer) ([]*trace.Result, time.Duration, error) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := isTerminal(stderr)
	var mu sync.Mutex // progress lines come from concurrent checks
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stderr, format+"\n", a...)
	}
	go func() {
		// After the first signal, restore the default: a second one quits at
		// once (the next run removes what this one left behind).
		<-ctx.Done()
		stop()
	}()

	opts := []harness.Option{harness.WithEnvoyVersion(f.envoy), harness.WithConfigGenerator(f.generator)}
	if f.verbose || tty {
		opts = append(opts, harness.WithLogf(func(format string, a ...any) { say("  "+format, a...) }))
	}
	ro := harness.RunOptions{Parallel: f.parallel, Artifacts: f.artifacts,
		Keep: os.Getenv("MESHTLS_KEEP") != "", OnKeep: func(msg string) { say("%s", msg) }}
	if tty {
		ro.Progress = func(r *trace.Result) {
			mark := map[outcome.Verdict]string{outcome.Pass: "✓", outcome.Fail: "✗", outcome.Report: "·"}[r.Verdict]
			say("%s %s/%s  %s [%s]", mark, r.Scenario, r.Name, r.Result, outcome.Join(r.Wire, ", "))
		}
	}
	nChecks := 0
	for _, s := range scs {
		nChecks += len(s.Mesh.Checks)
	}
	if tty || f.verbose {
		say("meshtls: running %s, %s", plural(len(scs), "scenario"), plural(nChecks, "check"))
	}

	start := time.Now()
	results, err := harness.RunScenarios(ctx, scs, ro, opts...)
	elapsed := time.Since(start)
	if err != nil {
		// RunScenarios has closed every runtime it started.
		if ctx.Err() != nil && parent.Err() == nil {
			return nil, 0, &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted (%v): stopped the run and removed its containers and networks", context.Cause(ctx))}
		}
		return nil, 0, bad(fmt.Errorf("run failed before every check finished: %w", err))
	}
	for _, r := range results {
		if r.Wire == nil {
			r.Wire = []outcome.Wire{}
		}
		if r.Hops == nil {
			r.Hops = []trace.Hop{}
		}
	}
	return results, elapsed, nil
}

// setControlPlane checks --control-plane and, for istio, finds the oracle
// program before any container starts.
func setControlPlane(f *runFlags) error {
	switch f.controlPlane {
	case "", "meshtls":
		return nil
	case "istio":
		oracle, err := crosscheck.FindOracle()
		if err != nil {
			return fmt.Errorf("--control-plane istio: %w", err)
		}
		f.generator = crosscheck.IstiodGenerator(oracle)
		return nil
	}
	return fmt.Errorf("--control-plane %q: want meshtls or istio", f.controlPlane)
}

// isTerminal reports whether w is a terminal (a character device), where
// progress lines help; in pipes and files they would only be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// checkFolder fails early (before any container starts) when path's
// folder does not exist.
func checkFolder(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("its folder: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// checkWritable fails early (before any container starts) when the report
// cannot be written.
func checkWritable(path string) error {
	if err := checkFolder(path); err != nil {
		return err
	}
	if !strings.HasSuffix(strings.ToLower(path), ".html") && !strings.HasSuffix(strings.ToLower(path), ".htm") {
		return errors.New("give a file name ending in .html")
	}
	return nil
}
