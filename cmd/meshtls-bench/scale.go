package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshtls/meshtls/bench"
)

// scaleRuns runs bench.Scale for each size in sizes ("10,50,100") and
// prints each run's figures and profile; exit 1 when a check failed, 2 when
// a run could not finish.
func scaleRuns(ctx context.Context, sizes string, pushes int, scoped, verbose bool) int {
	var logf func(string, ...any)
	if verbose {
		logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
	}
	code := 0
	var first *bench.ScaleFigures
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "-scale %q: want sizes of 2 or more, e.g. 10,50,100\n", sizes)
			return 2
		}
		f, err := bench.Scale(ctx, n, pushes, scoped, logf)
		if f != nil {
			printScale(f, first)
			if first == nil {
				first = f
			}
			if len(f.Failed) > 0 {
				code = 1
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale %d: %v\n", n, err)
			return 2
		}
	}
	return code
}

func printScale(f *bench.ScaleFigures, first *bench.ScaleFigures) {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	scoped := ""
	if f.Scoped {
		scoped = ", each proxy scoped by Sidecars (w0: its namespace; the others: istio-system)"
	}
	fmt.Printf("\n%d sidecar pods%s, %d checks (%d failed), load average %.2f at start\n", f.Pods, scoped, f.Checks, len(f.Failed), f.Load1)
	if f.PodsWhenStopped != 0 {
		fmt.Printf("  STOPPED by the memory guard (available memory below %d MiB) with %d pods running; system memory peak - idle %.1f MiB\n",
			bench.MemGuard>>20, f.PodsWhenStopped, float64(f.MemPeak-min(f.MemPeak, f.MemIdle))/(1<<20))
	}
	fmt.Printf("  total (start + checks)  %s", sec(f.Total))
	if first != nil && first.Total > 0 {
		fmt.Printf("  (%.2f x the %d-pod run)", f.Total.Seconds()/first.Total.Seconds(), first.Pods)
	}
	fmt.Printf("\n  start %s, checks %s, close %s\n", sec(f.Start), sec(f.Run), sec(f.Close))
	p := f.Phases
	fmt.Printf("  start phases: sweep %s, images %s, network %s, translate %s, containers %s, configured %s\n",
		sec(p.Sweep), sec(p.Images), sec(p.Network), sec(p.Translate), sec(p.Containers), sec(p.Configured))
	pp := f.PerPod
	fmt.Printf("  per pod (p50 / max): agent with init %s / %s, envoy %s / %s, envoy start to configured %s / %s\n",
		sec(pp.AgentP50), sec(pp.AgentMax), sec(pp.EnvoyP50), sec(pp.EnvoyMax), sec(pp.ConfiguredP50), sec(pp.ConfiguredMax))
	printCPU("CPU during start (s):", f.StartCPU)
	fmt.Printf("\n  memory: system peak - idle %s = %s per pod", mib(f.MemPeak-min(f.MemPeak, f.MemIdle)), mib(uint64(f.PerPodMemory())))
	if m := f.MemByRole; len(m) > 0 {
		fmt.Printf("; containers' rss: agent %s, envoy %s (%s per pod), page cache %s, %d containers",
			mib(m["agent"]), mib(m["envoy"]), mib((m["agent"]+m["envoy"])/uint64(f.Pods)), mib(m["cache"]), m["containers"])
	}
	fmt.Println()
	if f.PushRounds > 0 {
		fmt.Printf("  push-to-all-ACKed, mesh-wide PeerAuthentication, %d rounds: p50 %.0f ms, p95 %.0f ms (a round: %d proxies, %d translated, %d pushed)\n",
			f.PushRounds, ms(f.PushP50), ms(f.PushP95), f.MeshWide.Proxies, f.MeshWide.Translated, f.MeshWide.Pushed)
		printCPU("CPU per mesh-wide round (s):", f.PushCPU)
		fmt.Printf("\n  a policy for one workload: %.0f ms, %d proxies, %d translated, %d pushed\n",
			ms(f.OneProxy), f.OneProxyPush.Proxies, f.OneProxyPush.Translated, f.OneProxyPush.Pushed)
	}
	for _, m := range f.Failed {
		fmt.Printf("  CHECK FAILED: %s\n", m)
	}
}

// printCPU prints CPU seconds by component, largest first.
func printCPU(title string, cpu map[string]float64) {
	var keys []string
	for k := range cpu {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return cpu[keys[i]] > cpu[keys[j]] })
	fmt.Printf("  %s", title)
	for _, k := range keys {
		fmt.Printf(" %s %.2f;", k, cpu[k])
	}
}
