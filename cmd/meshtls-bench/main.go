// Command meshtls-bench prints how fast meshtls runs on this machine: cold
// start of a 6-pod mesh, the 64-check sidecar outcome matrix (bench/matrix,
// through the same path as `meshtls run`), the marginal cost of one check
// and push-to-ACK latency for 6 proxies. Figures, not assertions.
//
//	go run ./cmd/meshtls-bench [-runs 3] [-matrix bench/matrix] [-v]
//
// With -runs N each run is a fresh process (so every cold start is one);
// the summary gives each run and the median.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/meshtls/meshtls/bench"
	"github.com/meshtls/meshtls/harness"
)

func main() {
	harness.NoReaper() // meshtls removes what it creates itself
	if os.Getenv("MESHTLS_DEBUG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger()) // testcontainers' banner
	}
	runs := flag.Int("runs", 1, "whole-bench runs, each in a fresh process; the summary gives the median")
	asJSON := flag.Bool("json", false, "print one run's figures as JSON (used by -runs)")
	dir := flag.String("matrix", "bench/matrix", "directory of the matrix bundles")
	verbose := flag.Bool("v", false, "progress on stderr")
	soakChecks := flag.Int("soak", 0, "instead: the soak, this many sequential checks on one mesh (1000 in make bench) with -soak-pushes pushes, and report control-plane growth")
	soakPushes := flag.Int("soak-pushes", 50, "pushes during the soak")
	scale := flag.String("scale", "", "instead: generated meshes of these sizes, e.g. 10,50,100 (N sidecar pods, mesh STRICT, N-1 checks), with where the start time went")
	scalePushes := flag.Int("scale-pushes", 10, "with -scale: mesh-wide pushes timed on each mesh (then one one-proxy push); 0: none")
	scaleScoped := flag.Bool("scale-scoped", false, "with -scale: each proxy's config scoped by Istio Sidecars to what it calls (bench.ScaleBundleScoped)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *soakChecks > 0 {
		os.Exit(soak(ctx, *soakChecks, *soakPushes, *verbose))
	}
	if *scale != "" {
		os.Exit(scaleRuns(ctx, *scale, *scalePushes, *scaleScoped, *verbose))
	}

	var all []*bench.Figures
	if *runs <= 1 {
		o := bench.Options{MatrixDir: *dir}
		if *verbose {
			o.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
		}
		f := bench.Run(ctx, o)
		if *asJSON {
			_ = json.NewEncoder(os.Stdout).Encode(f)
			return
		}
		all = append(all, f)
	} else {
		for i := 0; i < *runs; i++ {
			fmt.Fprintf(os.Stderr, "run %d/%d ...\n", i+1, *runs)
			args := []string{"-runs", "1", "-json", "-matrix", *dir}
			if *verbose {
				args = append(args, "-v")
			}
			cmd := exec.CommandContext(ctx, os.Args[0], args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "run %d: %v\n", i+1, err)
				os.Exit(2)
			}
			var f bench.Figures
			if err := json.Unmarshal(out.Bytes(), &f); err != nil {
				fmt.Fprintf(os.Stderr, "run %d: bad output: %v\n%s", i+1, err, out.Bytes())
				os.Exit(2)
			}
			all = append(all, &f)
		}
	}
	if !summary(os.Stdout, all) {
		os.Exit(1)
	}
}

// row is one figure of the summary: its value per run and its target.
type row struct {
	name   string
	get    func(*bench.Figures) float64 // in the row's unit
	unit   string
	target float64 // 0: no target
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func s(d time.Duration) float64  { return d.Seconds() }

var rows = []row{
	{"cold start, 6 pods, to first check result", func(f *bench.Figures) float64 { return s(f.ColdStart) }, "s", 0},
	{"  of which harness.Start", func(f *bench.Figures) float64 { return s(f.StartOnly) }, "s", 0},
	{"matrix, 8 files / 64 checks, wall incl. pods", func(f *bench.Figures) float64 { return s(f.Matrix) }, "s", 60},
	{"matrix throughput", func(f *bench.Figures) float64 { return float64(f.MatrixChecks) / f.Matrix.Seconds() }, "checks/s", 0},
	{"one matrix file alone (8 checks), wall incl. pods", func(f *bench.Figures) float64 { return s(f.OneFile) }, "s", 0},
	{"ratio all-8 / one file", func(f *bench.Figures) float64 { return f.Matrix.Seconds() / f.OneFile.Seconds() }, "x", 2.5},
	{"marginal check, sequential median (passing call)", func(f *bench.Figures) float64 { return ms(f.MarginalSeq) }, "ms", 150},
	{"marginal check, sequential median (reset call)", func(f *bench.Figures) float64 { return ms(f.MarginalFailSeq) }, "ms", 0},
	{"marginal check, (T(2N)-T(N))/N at parallel 4", func(f *bench.Figures) float64 { return ms(f.MarginalPar) }, "ms", 0},
	{"6-sidecar mesh start", func(f *bench.Figures) float64 { return s(f.Push6Start) }, "s", 0},
	{"push-to-all-ACKed, 6 proxies, p50", func(f *bench.Figures) float64 { return ms(f.PushP50) }, "ms", 250},
	{"push-to-all-ACKed, 6 proxies, p95", func(f *bench.Figures) float64 { return ms(f.PushP95) }, "ms", 0},
}

// summary prints the table and reports whether every run completed with
// every matrix check passing.
func summary(w io.Writer, all []*bench.Figures) bool {
	ok := true
	fmt.Fprintf(w, "\nmeshtls bench: %d run(s), median shown\n\n", len(all))
	fmt.Fprintf(w, "%-50s %10s %-9s %-12s %s\n", "figure", "median", "unit", "target", "runs")
	for _, r := range rows {
		var vs []float64
		for _, f := range all {
			vs = append(vs, r.get(f))
		}
		med := median(vs)
		tgt, verdict := "", ""
		if r.target > 0 {
			tgt = fmt.Sprintf("<= %g", r.target)
			verdict = "met"
			if med > r.target {
				verdict = "MISSED"
			}
		}
		prec := 2 // s, x, checks/s
		if r.unit == "ms" {
			prec = 0
		}
		runs := ""
		for _, v := range vs {
			runs += fmt.Sprintf(" %.*f", prec, v)
		}
		fmt.Fprintf(w, "%-50s %10.*f %-9s %-12s%-22s %s\n", r.name, prec, med, r.unit, tgt, runs, verdict)
	}
	for i, f := range all {
		fmt.Fprintf(w, "\nrun %d: matrix %d checks, one file %d checks, %d push rounds\n", i+1, f.MatrixChecks, f.OneFileChecks, f.PushN)
		for _, m := range f.MatrixFailed {
			ok = false
			fmt.Fprintf(w, "  MATRIX CHECK FAILED: %s\n", m)
		}
		for _, m := range f.Failures {
			ok = false
			fmt.Fprintf(w, "  BENCH PART FAILED: %s\n", m)
		}
	}
	return ok
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// soak runs bench.Soak and prints its figures; exit 1 when a bound was
// exceeded or something was left behind, 2 when the soak could not finish.
func soak(ctx context.Context, checks, pushes int, verbose bool) int {
	var logf func(string, ...any)
	if verbose {
		logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
	}
	f, err := bench.Soak(ctx, checks, pushes, logf)
	if err != nil {
		if f == nil {
			f = &bench.SoakFigures{}
		}
		fmt.Fprintf(os.Stderr, "soak: stopped after %d checks and %d pushes: %v\n", f.Checks, f.Pushes, err)
		return 2
	}
	{
		fmt.Printf("\nmeshtls soak: %d sequential checks and %d pushes on one 2-sidecar mesh in %.1fs\n", f.Checks, f.Pushes, f.Duration.Seconds())
		fmt.Printf("%-22s %10s %10s %8s %s\n", "control plane", "before", "after", "growth", "bound")
		fmt.Printf("%-22s %10d %10d %8d %d\n", "goroutines", f.GoroutinesBefore, f.GoroutinesAfter, f.GoroutinesAfter-f.GoroutinesBefore, bench.SoakMaxGoroutineGrowth)
		fmt.Printf("%-22s %10d %10d %8d %d\n", "file descriptors", f.FDsBefore, f.FDsAfter, f.FDsAfter-f.FDsBefore, bench.SoakMaxFDGrowth)
		fmt.Printf("%-22s %10d %10d %8d %d\n", "heap in use (KiB)", f.HeapBefore>>10, f.HeapAfter>>10, (int64(f.HeapAfter)-int64(f.HeapBefore))>>10, bench.SoakMaxHeapGrowth>>10)
		fmt.Printf("left behind after Close: %d\n", len(f.Leftovers))
	}
	if leaks := f.Leaks(); len(leaks) > 0 {
		for _, l := range leaks {
			fmt.Printf("LEAK: %s\n", l)
		}
		return 1
	}
	fmt.Println("no growth beyond the bounds, nothing left behind")
	return 0
}
