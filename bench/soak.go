package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/meshtls/meshtls/harness"
)

// SoakFigures are what a long run on one mesh does to the control plane
// (this process: xDS server, log followers, agent clients): goroutines,
// open file descriptors and live heap, sampled after a warm-up and again
// after every check and push, each after a GC.
type SoakFigures struct {
	Checks, Pushes                    int
	Duration                          time.Duration
	GoroutinesBefore, GoroutinesAfter int
	FDsBefore, FDsAfter               int
	HeapBefore, HeapAfter             uint64 // bytes in use
	Leftovers                         []string
}

// Soak bounds: growth beyond these over the whole soak counts as a leak.
const (
	SoakMaxGoroutineGrowth = 10
	SoakMaxFDGrowth        = 10
	SoakMaxHeapGrowth      = 8 << 20
)

// Leaks lists the bounds a soak exceeded (none: it held).
func (f *SoakFigures) Leaks() []string {
	var out []string
	if d := f.GoroutinesAfter - f.GoroutinesBefore; d > SoakMaxGoroutineGrowth {
		out = append(out, fmt.Sprintf("goroutines grew by %d (bound %d)", d, SoakMaxGoroutineGrowth))
	}
	if d := f.FDsAfter - f.FDsBefore; d > SoakMaxFDGrowth {
		out = append(out, fmt.Sprintf("file descriptors grew by %d (bound %d)", d, SoakMaxFDGrowth))
	}
	if f.HeapAfter > f.HeapBefore && f.HeapAfter-f.HeapBefore > SoakMaxHeapGrowth {
		out = append(out, fmt.Sprintf("heap grew by %d KiB (bound %d KiB)", (f.HeapAfter-f.HeapBefore)>>10, SoakMaxHeapGrowth>>10))
	}
	for _, l := range f.Leftovers {
		out = append(out, "left behind: "+l)
	}
	return out
}

func sample() (goroutines, fds int, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	return runtime.NumGoroutine(), len(ents), ms.HeapInuse
}

// Soak runs checks sequential checks client -> server on a 2-sidecar mesh
// and, every checks/pushes checks, pushes a change of the client's
// cluster for server (a DestinationRule with ISTIO_MUTUAL, then none: auto
// mTLS; the wire stays mTLS), then closes the mesh and lists what the run
// left on the engine. The pushes leave the server's inbound listener
// alone: changing its filter chains drains the client's pooled connection,
// and a check right after such a push can meet that drain (503 UC,
// filter_chain_is_being_removed), which is Envoy's behaviour, not a leak.
func Soak(ctx context.Context, checks, pushes int, logf func(string, ...any)) (*SoakFigures, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	pods := workload("client", true) + workload("server", true)
	plain, err := parse("soak.yaml", pods+meshPA("STRICT"))
	if err != nil {
		return nil, err
	}
	withDR, err := parse("soak-dr.yaml", pods+meshPA("STRICT")+"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: server, namespace: default}\nspec:\n  host: server.default.svc.cluster.local\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")
	if err != nil {
		return nil, err
	}
	rt, err := harness.Start(ctx, plain, harness.WithLogf(logf))
	if err != nil {
		return nil, fmt.Errorf("starting the soak mesh: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			rt.Close()
		}
	}()
	c := check("soak", "client", "http://server.default.svc.cluster.local:8080/", okMTLS)
	push := func(i int) error {
		m := withDR
		if i%2 == 1 {
			m = plain
		}
		return rt.Apply(ctx, m)
	}
	// Warm-up: connection pools, log buffers and the xDS streams reach
	// their steady size before the baseline is taken.
	for i := 0; i < 20; i++ {
		if _, err := runOne(ctx, rt, c); err != nil {
			return nil, fmt.Errorf("warm-up check %d: %w", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := push(i); err != nil {
			return nil, fmt.Errorf("warm-up push %d: %w", i, err)
		}
	}
	f := &SoakFigures{}
	f.GoroutinesBefore, f.FDsBefore, f.HeapBefore = sample()
	every := checks / max(pushes, 1)
	start := time.Now()
	for i := 0; i < checks; i++ {
		if _, err := runOne(ctx, rt, c); err != nil {
			return f, fmt.Errorf("check %d: %w", i, err)
		}
		f.Checks++
		if f.Pushes < pushes && (i+1)%every == 0 {
			if err := push(f.Pushes); err != nil {
				return f, fmt.Errorf("push %d: %w", f.Pushes, err)
			}
			f.Pushes++
		}
		if (i+1)%100 == 0 {
			logf("soak: %d checks, %d pushes", i+1, f.Pushes)
		}
	}
	f.Duration = time.Since(start)
	f.GoroutinesAfter, f.FDsAfter, f.HeapAfter = sample()
	closed = true
	if err := rt.Close(); err != nil {
		return f, fmt.Errorf("closing the soak mesh: %w", err)
	}
	f.Leftovers, err = harness.Leftovers(ctx, rt.RunID)
	if _, serr := os.Stat(rt.Dir); serr == nil {
		f.Leftovers = append(f.Leftovers, "run dir "+rt.Dir)
	}
	return f, err
}
