// Package bench measures how fast meshtls runs a TLS matrix on live Envoy
// proxies: cold start, the 8-row sidecar outcome matrix (through the same
// path as `meshtls run`), the marginal cost of one check, and push-to-ACK
// latency. It reports figures; it asserts nothing about time (a loaded
// machine makes timed assertions flaky). cmd/meshtls-bench prints them.
package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Figures are one run's measurements. Durations are wall time.
type Figures struct {
	// ColdStart: harness.Start of the 6-pod mesh (4 sidecars, 2 plain) until
	// the first check's result, in a fresh process (includes the image
	// check and the cached `go build` of the pod binary).
	ColdStart time.Duration `json:"coldStartNs"`
	// StartOnly is the harness.Start part of ColdStart.
	StartOnly time.Duration `json:"startOnlyNs"`

	// Matrix: harness.LoadScenarios + RunScenarios of every matrix file,
	// pod start included.
	Matrix       time.Duration `json:"matrixNs"`
	MatrixChecks int           `json:"matrixChecks"`
	MatrixFailed []string      `json:"matrixFailed,omitempty"`
	// OneFile: the same for the first matrix file alone.
	OneFile       time.Duration `json:"oneFileNs"`
	OneFileChecks int           `json:"oneFileChecks"`

	// MarginalSeq is the median of rt.Run of one passing check, one at a
	// time, on the running 6-pod mesh.
	MarginalSeq time.Duration `json:"marginalSeqNs"`
	// MarginalFailSeq is the same for a check whose call is reset (the
	// evidence of a hop that never happened is waited for).
	MarginalFailSeq time.Duration `json:"marginalFailSeqNs"`
	// MarginalPar is (T(2N) - T(N)) / N with RunScenarios' default
	// parallelism (4): the cost of one more check in a scenario.
	MarginalPar time.Duration `json:"marginalParNs"`

	// Push6Start is harness.Start of the 6-sidecar mesh used for pushes.
	Push6Start time.Duration `json:"push6StartNs"`
	// PushP50/P95: rt.Apply alternating two configs that change every
	// proxy's listeners, until all 6 proxies ACKed and none is warming.
	PushP50  time.Duration `json:"pushP50Ns"`
	PushP95  time.Duration `json:"pushP95Ns"`
	PushN    int           `json:"pushN"`
	Failures []string      `json:"failures,omitempty"`
}

// Options size the measurements.
type Options struct {
	MatrixDir  string // bench/matrix
	MarginalN  int    // sequential samples (default 15)
	ParallelN  int    // N of the T(2N)-T(N) measurement (default 16)
	PushRounds int    // Apply rounds (default 40)
	Logf       func(string, ...any)
}

func (o *Options) defaults() {
	if o.MarginalN <= 0 {
		o.MarginalN = 15
	}
	if o.ParallelN <= 0 {
		o.ParallelN = 16
	}
	if o.PushRounds <= 0 {
		o.PushRounds = 40
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// workload renders a Workload document with an HTTP and a TCP port.
func workload(name string, sidecar bool) string {
	return fmt.Sprintf("---\napiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  sidecar: %v\n  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]\n", name, sidecar)
}

// SixPods is the cold-start mesh: a sidecar and a plain client, a sidecar
// and a plain server, and two more sidecar pods.
func SixPods() string {
	return workload("client", true) + workload("naked-client", false) +
		workload("server", true) + workload("naked-server", false) +
		workload("extra1", true) + workload("extra2", true)
}

// SixProxies is the push mesh: six sidecar pods.
func SixProxies() string {
	var b strings.Builder
	for i := 1; i <= 6; i++ {
		b.WriteString(workload(fmt.Sprintf("s%d", i), true))
	}
	return b.String()
}

// meshPA is a mesh-wide PeerAuthentication in the root namespace.
func meshPA(mode string) string {
	return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: " + mode + "}\n"
}

func parse(name, y string) (*mesh.Mesh, error) { return mesh.Parse(name, []byte(y)) }

func check(name, from, to string, exp *mesh.Expect) *mesh.Check {
	return &mesh.Check{Name: name, Namespace: "default", From: from, To: to, Expect: exp}
}

var (
	okMTLS = &mesh.Expect{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS}, Peer: "spiffe://cluster.local/ns/default/sa/client"}
	// Under mesh STRICT a plain client's plaintext is reset
	// (pilot/pkg/networking/core/filterchain_options.go).
	resetPlain = &mesh.Expect{Result: outcome.Reset, Wire: []outcome.Wire{outcome.Plaintext}, Peer: outcome.PeerNone}
)

// runOne runs c and fails when its expectation did not hold.
func runOne(ctx context.Context, rt *harness.Runtime, c *mesh.Check) (time.Duration, error) {
	start := time.Now()
	res, err := rt.Run(ctx, "bench", c)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if !res.Passed() {
		return d, fmt.Errorf("check %s did not pass:\n%s", c.Name, res.Explain())
	}
	return d, nil
}

// ColdStartAndMarginal starts the 6-pod mesh, times it to the first check
// result, then measures the marginal cost of a check on it.
func ColdStartAndMarginal(ctx context.Context, o Options, f *Figures) error {
	o.defaults()
	m, err := parse("six-pods.yaml", SixPods())
	if err != nil {
		return err
	}
	start := time.Now()
	rt, err := harness.Start(ctx, m, harness.WithLogf(o.Logf))
	if err != nil {
		return fmt.Errorf("starting the 6-pod mesh: %w", err)
	}
	defer rt.Close()
	f.StartOnly = time.Since(start)
	// No PeerAuthentication, no DR: auto mTLS between sidecars.
	first := check("client-to-server", "client", "http://server.default.svc.cluster.local:8080/", okMTLS)
	if _, err := runOne(ctx, rt, first); err != nil {
		return err
	}
	f.ColdStart = time.Since(start)
	o.Logf("cold start: %v (Start %v)", f.ColdStart, f.StartOnly)

	// Sequential: one check at a time, median.
	var ds []time.Duration
	for i := 0; i < o.MarginalN; i++ {
		d, err := runOne(ctx, rt, first)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	f.MarginalSeq = Quantile(ds, 0.5)

	// A failing call (reset) under STRICT: the check waits for evidence of
	// hops that never happen, bounded by the harness's evidence deadline.
	strict, err := parse("six-pods-strict.yaml", SixPods()+meshPA("STRICT"))
	if err != nil {
		return err
	}
	if err := rt.Apply(ctx, strict); err != nil {
		return err
	}
	reset := check("naked-to-server", "naked-client", "http://server.default.svc.cluster.local:8080/", resetPlain)
	ds = ds[:0]
	for i := 0; i < max(5, o.MarginalN/3); i++ {
		d, err := runOne(ctx, rt, reset)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	f.MarginalFailSeq = Quantile(ds, 0.5)

	// Parallel: T(2N) - T(N) with 4 at a time, the way RunScenarios runs a
	// scenario's checks. A mix of the four sidecar pairs' passing calls.
	pairs := [][2]string{{"client", "server"}, {"extra1", "server"}, {"extra2", "extra1"}, {"client", "extra2"}}
	mk := func(n int) []*mesh.Check {
		var cs []*mesh.Check
		for i := 0; i < n; i++ {
			p := pairs[i%len(pairs)]
			exp := *okMTLS
			exp.Peer = mesh.SPIFFE("default", p[0])
			cs = append(cs, check(fmt.Sprintf("c%d", i), p[0], "http://"+p[1]+".default.svc.cluster.local:8080/", &exp))
		}
		return cs
	}
	t1, err := runParallel(ctx, rt, mk(o.ParallelN), 4)
	if err != nil {
		return err
	}
	t2, err := runParallel(ctx, rt, mk(2*o.ParallelN), 4)
	if err != nil {
		return err
	}
	f.MarginalPar = (t2 - t1) / time.Duration(o.ParallelN)
	o.Logf("marginal: seq %v, reset %v, parallel %v (T(%d)=%v T(%d)=%v)", f.MarginalSeq, f.MarginalFailSeq, f.MarginalPar, o.ParallelN, t1, 2*o.ParallelN, t2)
	return nil
}

func runParallel(ctx context.Context, rt *harness.Runtime, cs []*mesh.Check, par int) (time.Duration, error) {
	start := time.Now()
	sem := make(chan struct{}, par)
	errs := make(chan error, len(cs))
	for _, c := range cs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := runOne(ctx, rt, c)
			errs <- err
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// Matrix runs every file of dir, then the first file alone, each the way
// `meshtls run` does (LoadScenarios + RunScenarios, default options).
func Matrix(ctx context.Context, o Options, f *Figures) error {
	o.defaults()
	scs, err := harness.LoadScenarios(o.MatrixDir)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := harness.RunScenarios(ctx, scs, harness.RunOptions{}, harness.WithLogf(o.Logf))
	f.Matrix = time.Since(start)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	f.MatrixChecks = len(res)
	for _, r := range res {
		if r.Verdict == outcome.Fail {
			f.MatrixFailed = append(f.MatrixFailed, r.Scenario+"/"+r.Name+": "+r.Explain())
		}
	}
	o.Logf("matrix: %d checks in %v, %d failed", f.MatrixChecks, f.Matrix, len(f.MatrixFailed))

	start = time.Now()
	res, err = harness.RunScenarios(ctx, scs[:1], harness.RunOptions{}, harness.WithLogf(o.Logf))
	f.OneFile = time.Since(start)
	if err != nil {
		return fmt.Errorf("matrix file %s alone: %w", scs[0].Name, err)
	}
	f.OneFileChecks = len(res)
	for _, r := range res {
		if r.Verdict == outcome.Fail {
			f.MatrixFailed = append(f.MatrixFailed, "(alone) "+r.Scenario+"/"+r.Name+": "+r.Explain())
		}
	}
	o.Logf("one file: %d checks in %v", f.OneFileChecks, f.OneFile)
	return nil
}

// PushACK starts six sidecar pods and times rt.Apply of two alternating
// configs (mesh-wide STRICT / PERMISSIVE: every proxy's inbound listener
// changes) until all six ACKed with no listener warming.
func PushACK(ctx context.Context, o Options, f *Figures) error {
	o.defaults()
	a, err := parse("push-a.yaml", SixProxies()+meshPA("STRICT"))
	if err != nil {
		return err
	}
	b, err := parse("push-b.yaml", SixProxies()+meshPA("PERMISSIVE"))
	if err != nil {
		return err
	}
	start := time.Now()
	rt, err := harness.Start(ctx, b, harness.WithLogf(o.Logf))
	if err != nil {
		return fmt.Errorf("starting the 6-proxy mesh: %w", err)
	}
	defer rt.Close()
	f.Push6Start = time.Since(start)
	var ds []time.Duration
	for i := 0; i < o.PushRounds; i++ {
		m := a
		if i%2 == 1 {
			m = b
		}
		start := time.Now()
		if err := rt.Apply(ctx, m); err != nil {
			return fmt.Errorf("push round %d: %w", i, err)
		}
		ds = append(ds, time.Since(start))
	}
	f.PushN = len(ds)
	f.PushP50, f.PushP95 = Quantile(ds, 0.5), Quantile(ds, 0.95)
	o.Logf("push-to-ACK (6 proxies, %d rounds): p50 %v p95 %v", f.PushN, f.PushP50, f.PushP95)
	return nil
}

// Run takes every measurement in order; a failing part is recorded in
// f.Failures and the others still run.
func Run(ctx context.Context, o Options) *Figures {
	f := &Figures{}
	for _, part := range []struct {
		name string
		fn   func(context.Context, Options, *Figures) error
	}{
		{"cold start + marginal", ColdStartAndMarginal},
		{"matrix", Matrix},
		{"push-to-ACK", PushACK},
	} {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := part.fn(pctx, o, f)
		cancel()
		if err != nil {
			f.Failures = append(f.Failures, part.name+": "+err.Error())
		}
	}
	return f
}

// Quantile is the nearest-rank q-quantile of ds (0 for none).
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
