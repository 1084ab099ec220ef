package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// ScaleFigures are one `meshtls run`-like run of a generated mesh of N
// sidecar pods (mesh-wide STRICT, one check from the first pod to each
// other), with where the start time went.
type ScaleFigures struct {
	Pods    int           `json:"pods"`
	Scoped  bool          `json:"scoped,omitempty"` // ScaleBundleScoped
	Checks  int           `json:"checks"`
	Failed  []string      `json:"failed,omitempty"`
	Total   time.Duration `json:"totalNs"` // load + start + checks (Close excluded)
	Start   time.Duration `json:"startNs"`
	Run     time.Duration `json:"checksNs"`
	Close   time.Duration `json:"closeNs"`
	Phases  harness.StartTiming
	PerPod  PodPhases `json:"perPod"`
	Load1   float64   `json:"load1"` // load average when the run started
	MemIdle uint64    `json:"memIdle"`
	MemPeak uint64    `json:"memPeak"` // system memory in use (MemTotal - MemAvailable)
	// Containers' own memory (cgroup v1 rss + cache) summed at the end
	// of the checks, by role.
	MemByRole map[string]uint64 `json:"memByRole"`
	// PodsWhenStopped is how many pods were running when the memory guard
	// stopped the run (0: it did not).
	PodsWhenStopped int `json:"podsWhenStopped,omitempty"`
	// StartCPU is CPU seconds spent during Start, by component (sampleCPU).
	StartCPU map[string]float64 `json:"startCPU"`

	// Push-to-all-ACKed of mesh-wide PeerAuthentication changes (STRICT and
	// PERMISSIVE in turn): every proxy's inbound changes.
	PushP50, PushP95 time.Duration
	PushRounds       int
	MeshWide         harness.PushStats // what one mesh-wide change did
	// PushCPU is CPU seconds per mesh-wide round, by component (sampleCPU
	// over all rounds, divided by their number).
	PushCPU map[string]float64 `json:"pushCPU"`
	// A PeerAuthentication selecting one workload (w1, PERMISSIVE): its
	// push-to-ACKed and how many proxies were translated and pushed.
	OneProxy     time.Duration
	OneProxyPush harness.PushStats
}

// PodPhases are the medians and maxima over pods of each pod's phases.
type PodPhases struct {
	AgentP50, AgentMax           time.Duration
	EnvoyP50, EnvoyMax           time.Duration
	ConfiguredP50, ConfiguredMax time.Duration
}

// PerPodMemory is (peak - idle) / pods.
func (f *ScaleFigures) PerPodMemory() float64 {
	if f.Pods == 0 || f.MemPeak < f.MemIdle {
		return 0
	}
	return float64(f.MemPeak-f.MemIdle) / float64(f.Pods)
}

// ScaleBundle is the generated bundle: n sidecar workloads w0..w(n-1)
// (labels app: wN), mesh-wide STRICT, and a check from w0 to every other pod.
func ScaleBundle(n int) string { return scaleBundle(n, false) }

// ScaleBundleScoped is ScaleBundle with each proxy's config scoped to what
// it calls, as Istio advises for large meshes (its Sidecar resource): the
// namespace's Sidecar imports only istio-system (nothing here), w0's own
// imports its namespace. Without it every proxy holds every Service, so
// Envoy's memory and push cost grow with the square of the mesh.
func ScaleBundleScoped(n int) string { return scaleBundle(n, true) }

const scaleSidecars = `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: w0, namespace: default}
spec:
  workloadSelector:
    labels: {app: w0}
  egress:
  - hosts: ["./*"]
`

func scaleBundle(n int, scoped bool) string {
	var b strings.Builder
	if scoped {
		b.WriteString(scaleSidecars)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: w%d, labels: {app: w%d}}\nspec:\n  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]\n", i, i)
	}
	b.WriteString(meshPA("STRICT"))
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: w0-to-w%d}\nspec:\n  from: w0\n  to: http://w%d.default.svc.cluster.local:8080/\n  expect: {result: ok, wire: [mtls]}\n", i, i)
	}
	return b.String()
}

// Scale writes ScaleBundle(n) to a file, loads it as `meshtls run` does,
// starts the mesh, runs every check 4 at a time (RunScenarios' default),
// sampling system memory every 100 ms; then pushRounds mesh-wide
// PeerAuthentication changes and one change that concerns one proxy
// (scalePushes); then closes it.
//
// scoped uses ScaleBundleScoped instead.
func Scale(ctx context.Context, n, pushRounds int, scoped bool, logf func(string, ...any)) (*ScaleFigures, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	f := &ScaleFigures{Pods: n, Scoped: scoped, Load1: load1()}
	dir, err := os.MkdirTemp("", "meshtls-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, fmt.Sprintf("scale-%d.yaml", n))
	if err := os.WriteFile(file, []byte(scaleBundle(n, scoped)), 0o644); err != nil {
		return nil, err
	}
	f.MemIdle = memInUse()
	// The machine is shared: stop (and remove the mesh) rather than let
	// the mesh take the memory others' work needs.
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	stopMem := sampleMem(&f.MemPeak, func() {
		f.PodsWhenStopped = ownAgents()
		stopRun(fmt.Errorf("stopped by the memory guard: less than %d MiB available", MemGuard>>20))
	})
	cpu0 := sampleCPU(nil)
	start := time.Now()
	sc, err := harness.LoadScenario(file)
	if err != nil {
		stopMem()
		return nil, err
	}
	rt, err := harness.Start(ctx, sc.Mesh, harness.WithLogf(logf), harness.WithStartTimeout(30*time.Minute))
	if err != nil {
		stopMem()
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return f, err
	}
	f.Start = time.Since(start)
	ids := map[string]bool{}
	for id := range runContainers(rt.RunID) {
		ids[id] = true
	}
	f.StartCPU = subCPU(sampleCPU(ids), cpu0)
	f.Phases = rt.StartTiming()
	f.PerPod = podPhases(rt, n)
	logf("%d pods started in %v: %+v", n, f.Start, f.Phases)
	t := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	for _, c := range sc.Mesh.Checks {
		g.Go(func() error {
			r, err := rt.Run(gctx, sc.Name, c)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			f.Checks++
			if r.Verdict == outcome.Fail {
				f.Failed = append(f.Failed, c.Name+": "+r.Explain())
			}
			return nil
		})
	}
	err = g.Wait()
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	f.Run = time.Since(t)
	f.Total = time.Since(start)
	f.MemByRole = containerMemory(runContainers(rt.RunID))
	stopMem()
	if err == nil && pushRounds > 0 {
		err = scalePushes(ctx, rt, n, pushRounds, f, logf)
	}
	t = time.Now()
	cerr := rt.Close()
	f.Close = time.Since(t)
	if err != nil {
		return f, err
	}
	return f, cerr
}

func podPhases(rt *harness.Runtime, n int) PodPhases {
	var a, e, c []time.Duration
	for i := 0; i < n; i++ {
		p, ok := rt.Pod(fmt.Sprintf("w%d", i))
		if !ok {
			continue
		}
		a, e, c = append(a, p.Timing.Agent), append(e, p.Timing.Envoy), append(c, p.Timing.Configured)
	}
	return PodPhases{
		AgentP50: Quantile(a, 0.5), AgentMax: slices.Max(a),
		EnvoyP50: Quantile(e, 0.5), EnvoyMax: slices.Max(e),
		ConfiguredP50: Quantile(c, 0.5), ConfiguredMax: slices.Max(c),
	}
}

func load1() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	fs := strings.Fields(string(b))
	if len(fs) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fs[0], 64)
	return v
}

// memInUse is MemTotal - MemAvailable in bytes.
func memInUse() uint64 {
	fh, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer fh.Close()
	var total, avail uint64
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fs[1], 10, 64)
		switch fs[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	return total - avail
}

// MemGuard is the available memory (MemAvailable) below which Scale stops.
const MemGuard = 3 << 30

// memAvailable is MemAvailable in bytes.
func memAvailable() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(l); len(fs) >= 2 && fs[0] == "MemAvailable:" {
			v, _ := strconv.ParseUint(fs[1], 10, 64)
			return v << 10
		}
	}
	return 1 << 62 // unknown: no guard
}

// sampleMem records the peak of memInUse until the returned stop is
// called, and calls low once when available memory falls below MemGuard.
func sampleMem(peak *uint64, low func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		fired := false
		for {
			*peak = max(*peak, memInUse())
			if !fired && memAvailable() < MemGuard {
				fired = true
				low()
			}
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// runContainers maps the run's container ids to their role.
func runContainers(runID string) map[string]string {
	out, err := exec.Command("docker", "ps", "-a", "--no-trunc", "--filter", "label=dev.meshtls.run="+runID,
		"--format", `{{.ID}} {{.Label "dev.meshtls.role"}}`).Output()
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if id, role, ok := strings.Cut(line, " "); ok {
			m[id] = role
		}
	}
	return m
}

// containerMemory sums, by role (agent, envoy, init), the anonymous memory
// (cgroup v1 memory.stat rss) of the run's containers; "cache" sums their
// page cache. Empty where the engine or the cgroup layout differ.
func containerMemory(ids map[string]string) map[string]uint64 {
	m := map[string]uint64{}
	for id, role := range ids {
		b, err := os.ReadFile("/sys/fs/cgroup/memory/docker/" + id + "/memory.stat")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, " ")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rss":
				m[role] += n
			case "cache":
				m["cache"] += n
			}
		}
		m["containers"]++
	}
	return m
}

// scalePushes times rt.Apply of rounds mesh-wide PeerAuthentication changes,
// then of a policy selecting w1 alone, recording what each translated and
// pushed.
func scalePushes(ctx context.Context, rt *harness.Runtime, n, rounds int, f *ScaleFigures, logf func(string, ...any)) error {
	bundle := func(extra string) (*mesh.Mesh, error) {
		b := strings.Replace(scaleBundle(n, f.Scoped), meshPA("STRICT"), extra, 1)
		return parse(fmt.Sprintf("scale-%d.yaml", n), b)
	}
	var ds []time.Duration
	ids := map[string]bool{}
	for id := range runContainers(rt.RunID) {
		ids[id] = true
	}
	cpu0 := sampleCPU(ids)
	for i := 0; i < rounds; i++ {
		mode := "PERMISSIVE"
		if i%2 == 1 {
			mode = "STRICT"
		}
		m, err := bundle(meshPA(mode))
		if err != nil {
			return err
		}
		t := time.Now()
		if err := rt.Apply(ctx, m); err != nil {
			return fmt.Errorf("push round %d: %w", i, err)
		}
		ds = append(ds, time.Since(t))
		f.MeshWide = rt.LastPush()
	}
	f.PushRounds = len(ds)
	f.PushCPU = subCPU(sampleCPU(ids), cpu0)
	for k := range f.PushCPU {
		f.PushCPU[k] /= float64(max(1, len(ds)))
	}
	f.PushP50, f.PushP95 = Quantile(ds, 0.5), Quantile(ds, 0.95)
	logf("push-to-ACK (%d proxies, %d rounds): p50 %v p95 %v; last %+v", n, len(ds), f.PushP50, f.PushP95, f.MeshWide)
	m, err := bundle(meshPA("STRICT") + "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: w1, namespace: default}\nspec:\n  selector: {matchLabels: {app: w1}}\n  mtls: {mode: PERMISSIVE}\n")
	if err != nil {
		return err
	}
	if rounds%2 == 1 { // back to STRICT mesh-wide first
		s, err := bundle(meshPA("STRICT"))
		if err != nil {
			return err
		}
		if err := rt.Apply(ctx, s); err != nil {
			return err
		}
	}
	t := time.Now()
	if err := rt.Apply(ctx, m); err != nil {
		return fmt.Errorf("one-proxy push: %w", err)
	}
	f.OneProxy, f.OneProxyPush = time.Since(t), rt.LastPush()
	logf("one-proxy push: %v, %+v", f.OneProxy, f.OneProxyPush)
	return nil
}

// ownAgents counts the pod agents this process has running.
func ownAgents() int {
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=dev.meshtls.pid="+strconv.Itoa(os.Getpid()),
		"--filter", "label=dev.meshtls.role=agent").Output()
	if err != nil {
		return -1
	}
	return len(strings.Fields(string(out)))
}
