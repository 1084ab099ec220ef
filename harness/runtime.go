// Package harness is the runtime: it builds images, creates an internal
// network, starts pods (app agent + Envoy sidecar sharing a network
// namespace, traffic captured like istio-init), gateways and plain or
// external workloads, pushes each proxy its config over ADS, runs checks and
// collects evidence, and removes everything it made on every exit path.
// Istio semantics live in mesh and translate, not here (docs/architecture.md).
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"golang.org/x/sync/errgroup"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
	"github.com/meshtls/meshtls/xds"
)

// Option configures a Runtime.
type Option func(*options)

type options struct {
	logf         func(string, ...any)
	startWait    time.Duration
	envoyVersion string
	generator    ConfigGenerator // nil: meshtls's translator
}

// WithLogf sends progress lines to f (default: discarded).
func WithLogf(f func(string, ...any)) Option { return func(o *options) { o.logf = f } }

// WithStartTimeout bounds how long pods may take to be ready (default 90s,
// plus 1s per pod beyond 20: a 300-pod mesh on two cores takes minutes).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startWait = d } }

// Runtime is one running mesh.
//
// Once Start returns, a Runtime is safe for concurrent use: checks (Run,
// RunChecks, Check, Call, CallCheck), Pod, Certs, SaveArtifacts and
// KeepMessage may be called from many goroutines, also while Apply,
// ApplyConfig, Repush, RotateWorkload, RestartProxy, RestartControlPlane or
// SetConfigGenerator runs. Those that
// change what the proxies are served take turns: one push and its wait for
// every ACK at a time. A check made during a push meets whichever config
// each proxy holds at that moment; its trace names the Istio resources of
// the config translated last. Close ends the Runtime: call it once, after
// every other call has returned.
type Runtime struct {
	opts   options
	cli    *client.Client
	RunID  string
	Dir    string // host run directory (sockets, bootstraps, CA files)
	images Images
	certs  *certs.Store
	xds    *xds.Server
	netw   *testcontainers.DockerNetwork
	prefix netip.Prefix

	// Set while Start runs, read-only after: read without a lock.
	addrs map[string]netip.Addr
	pods  map[string]*Pod // by workload id

	// pushMu makes the calls that change the served config take turns.
	pushMu sync.Mutex
	// mu guards mesh and decisions: written holding pushMu and mu, read
	// holding either (checks read them while a push runs).
	mu   sync.Mutex
	mesh *mesh.Mesh
	// decisions are what translation used for each proxy's config (the
	// Istio resources that decided), by workload id, for the trace. An
	// entry is replaced, never changed in place.
	decisions map[string]map[string]mesh.Decision
	inputs    *translate.Inputs      // of mesh
	configs   map[string]proxyConfig // by workload id
	certsSeen uint64                 // certs.Store.Replaced() at the last push
	lastPush  PushStats
	lost      *lostState

	closeOnce sync.Once
	closeErr  error

	timing StartTiming
}

// StartTiming is where Start's time went, for the scale bench's profile.
type StartTiming struct {
	Sweep      time.Duration // removing dead runs' leftovers
	Images     time.Duration // image check (or build)
	Network    time.Duration // the run's network
	Translate  time.Duration // every proxy's first config
	Containers time.Duration // every pod's containers started, concurrently
	Configured time.Duration // then, until every proxy ACKed with no listener warming
}

// PodTiming is one pod's share of Start: each container's create and start
// (for the agent, with its init, until its ready line), and for a proxy the time
// from its container's start until its first config is ACKed and no
// listener is warming.
type PodTiming struct {
	Agent, Envoy, Configured time.Duration
	envoyStarted             time.Time
}

// StartTiming reports where Start's time went.
func (r *Runtime) StartTiming() StartTiming { return r.timing }

// Start brings a mesh up: nothing is left behind if it fails.
func Start(ctx context.Context, m *mesh.Mesh, opt ...Option) (rt *Runtime, err error) {
	o := options{logf: func(string, ...any) {}, startWait: 90*time.Second + time.Duration(max(0, len(m.Workloads)-20))*time.Second}
	for _, f := range opt {
		f(&o)
	}
	r := &Runtime{opts: o, pods: map[string]*Pod{}, lost: newLostState()}
	defer func() {
		if err != nil {
			err = explainEngineLoss(r.cli, err)
			_ = r.Close()
		}
	}()
	if r.cli, err = dockerClient(ctx); err != nil {
		return nil, err
	}
	t := time.Now()
	if err := sweepDeadRuns(ctx, r.cli, o.logf); err != nil {
		o.logf("warning: removing leftovers of dead runs: %v", err)
	}
	r.timing.Sweep, t = time.Since(t), time.Now()
	if r.images, err = ensureImages(ctx, r.cli, o.envoyVersion, o.logf); err != nil {
		return nil, err
	}
	r.timing.Images = time.Since(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	r.RunID = hex.EncodeToString(b[:])
	if r.Dir, err = os.MkdirTemp("", "meshtls-"+r.RunID+"-"); err != nil {
		return nil, err
	}
	if err := checkSocketPaths(r.Dir, m); err != nil {
		return nil, err
	}
	// Proxies run as uid 1337 and must traverse the run dir.
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		return nil, err
	}
	set, err := certs.NewSet()
	if err != nil {
		return nil, err
	}
	r.certs = certs.NewStore(set)
	if err := certs.WriteCAs(filepath.Join(r.Dir, "ca"), set); err != nil {
		return nil, err
	}
	if err := writeOSTrustStore(filepath.Join(r.Dir, osRootsFile), set); err != nil {
		return nil, err
	}
	if err := r.startXDS(); err != nil {
		return nil, err
	}
	t = time.Now()
	if err := r.createNetwork(ctx, m); err != nil {
		return nil, err
	}
	r.timing.Network = time.Since(t)
	if err := r.startPods(ctx, m); err != nil {
		return nil, err
	}
	r.watchEngine()
	return r, nil
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is
// 108 bytes with the terminating NUL); a longer one fails with a bare
// "bind: invalid argument".
const maxSocketPath = 107

// checkSocketPaths fails early, with the fix, when a socket under dir would
// be too long: the xDS socket and each pod's agent and admin sockets.
func checkSocketPaths(dir string, m *mesh.Mesh) error {
	longest := filepath.Join(dir, "xds", "xds.sock")
	for _, w := range m.Workloads {
		if p := filepath.Join(dir, "pods", w.Namespace+"."+w.Name, "admin.sock"); len(p) > len(longest) {
			longest = p
		}
	}
	if len(longest) > maxSocketPath {
		return fmt.Errorf("the run directory is too deep for Unix sockets: %s is %d bytes, the limit is %d; set TMPDIR to a shorter directory (e.g. /tmp) or use shorter workload names", longest, len(longest), maxSocketPath)
	}
	return nil
}

func (r *Runtime) startXDS(opts ...xds.Option) error {
	dir := filepath.Join(r.Dir, "xds")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lis, err := xds.ListenUnix(filepath.Join(dir, "xds.sock"))
	if err != nil {
		return err
	}
	r.xds = xds.NewServer(opts...)
	go func() { _ = r.xds.Serve(lis) }()
	return nil
}

// startPods starts every workload concurrently and waits until each proxy
// has ACKed its config and has no warming listener.
func (r *Runtime) startPods(ctx context.Context, m *mesh.Mesh) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.startWait)
	defer cancel()
	if err := r.setMesh(m); err != nil {
		return err
	}
	if err := m.CheckAddressPlan(r.prefix); err != nil {
		return err
	}
	r.addrs = m.AddressPlan(r.prefix)
	for _, w := range m.Workloads {
		for _, a := range w.Addresses {
			if r.prefix.Contains(a) {
				return fmt.Errorf("workload %s: spec.addresses %s is inside the run's network %s, where it would be another pod's address: use an address outside %s", w.ID(), a, r.prefix, runPool)
			}
		}
	}
	t := time.Now()
	for _, w := range m.Workloads {
		r.pods[w.ID()] = &Pod{W: w, IP: r.addrs[w.ID()]}
	}
	versions, err := r.push(ctx, proxies(m))
	if err != nil {
		return err
	}
	r.timing.Translate, t = time.Since(t), time.Now()
	g, gctx := errgroup.WithContext(ctx)
	// Starting every pod at once only queues them in the engine, and makes
	// each pod's own wait (its ready line) as long as the whole start: a
	// few per core keep the engine and the proxies busy without that.
	g.SetLimit(podStartsPerCPU * runtime.NumCPU())
	for _, p := range r.pods {
		g.Go(func() error { return r.startPod(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.timing.Containers, t = time.Since(t), time.Now()
	err = r.waitProxies(ctx, versions)
	r.timing.Configured = time.Since(t)
	return err
}

// setMesh makes m the running config and fingerprints its inputs; the
// caller holds pushMu (or is Start).
func (r *Runtime) setMesh(m *mesh.Mesh) error {
	in, err := translate.NewInputs(m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.mesh, r.inputs = m, in
	r.mu.Unlock()
	return nil
}

// proxyConfig is what a proxy was last given: the inputs key of its
// translation and the xDS version of the result.
type proxyConfig struct{ key, version string }

// PushStats counts what the last Start, Apply or Repush did with the proxies:
// how many it considered, translated again (their inputs changed) and
// pushed (their config changed).
type PushStats struct{ Proxies, Translated, Pushed int }

// LastPush reports what the last Start, Apply or Repush did.
func (r *Runtime) LastPush() PushStats {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	return r.lastPush
}

// current is the config the mesh runs and, per proxy, the resources that
// decided its translation (a copy: a push replaces entries).
func (r *Runtime) current() (*mesh.Mesh, map[string]map[string]mesh.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mesh, maps.Clone(r.decisions)
}

// setDecisions records what decided a proxy's config; the caller holds
// pushMu (or is Start).
func (r *Runtime) setDecisions(id string, d map[string]mesh.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decisions == nil {
		r.decisions = map[string]map[string]mesh.Decision{}
	}
	r.decisions[id] = d
}

func (r *Runtime) waitProxies(ctx context.Context, versions map[string]string) error {
	g, gctx := errgroup.WithContext(ctx)
	for id, v := range versions {
		p := r.pods[id]
		g.Go(func() error {
			if err := r.xds.Wait(gctx, id, v); err != nil {
				return p.notACKed(gctx, err)
			}
			if err := p.Admin.WaitNoWarming(gctx); err != nil {
				return fmt.Errorf("proxy %s: %w%s", id, err, p.envoyTail())
			}
			// A change of filter chains drains the old ones: their
			// connections (a client's pooled one) close then, and a check
			// that met one would be reset.
			if err := p.Admin.WaitNoDraining(gctx); err != nil {
				return fmt.Errorf("proxy %s: %w%s", id, err, p.envoyTail())
			}
			if t := p.Timing.envoyStarted; !t.IsZero() && p.Timing.Configured == 0 {
				p.Timing.Configured = time.Since(t)
			}
			return nil
		})
	}
	return g.Wait()
}

// Apply pushes new Istio config for the same workloads and returns when
// every proxy has ACKed it; a NACK fails at once with Envoy's message.
func (r *Runtime) Apply(ctx context.Context, m *mesh.Mesh) error {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	if err := sameWorkloads(r.mesh, m); err != nil {
		return err
	}
	// Keep our workload objects: pods are keyed by them.
	m.Workloads = r.mesh.Workloads
	if err := r.setMesh(m); err != nil {
		return err
	}
	if err := r.applyNetPolicies(ctx); err != nil {
		return err
	}
	return r.pushAll(ctx)
}

// pushAll translates every proxy's config whose inputs changed and waits
// for the proxies, ending at once if the run is lost (engine.go). The
// caller holds pushMu (or is Start).
func (r *Runtime) pushAll(ctx context.Context) error {
	if err := r.lost.err(); err != nil {
		return err
	}
	ctx, cancel := r.lost.bound(ctx)
	defer cancel()
	return r.lost.explainLost(r.pushChanged(ctx))
}

// pushChanged translates every proxy's config whose inputs changed, hands
// it to the xDS server and waits until each proxy ACKed its version, and
// each one that was sent a new config has no listener warming or draining.
func (r *Runtime) pushChanged(ctx context.Context) error {
	r.lastPush = PushStats{}
	// An identity replaced through Certs() (SetWorkload, RotateWorkload)
	// changes secrets outside the inputs: translate every proxy.
	if seen := r.certs.Replaced(); seen != r.certsSeen {
		r.configs = nil
		r.certsSeen = seen
	}
	ws := proxies(r.mesh)
	before := map[string]string{}
	for _, w := range ws {
		before[w.ID()] = r.configs[w.ID()].version
	}
	all, err := r.push(ctx, ws)
	if err != nil {
		return err
	}
	versions, pushed := map[string]string{}, map[string]string{}
	for id, v := range all {
		if v != before[id] {
			pushed[id] = v
		} else {
			versions[id] = v
		}
	}
	// An unchanged proxy was sent nothing: its ACK of the version it runs
	// is already recorded, unless an earlier push was cut short.
	g, gctx := errgroup.WithContext(ctx)
	for id, v := range versions {
		g.Go(func() error {
			if err := r.xds.Wait(gctx, id, v); err != nil {
				return r.pods[id].notACKed(gctx, err)
			}
			return nil
		})
	}
	g.Go(func() error { return r.waitProxies(gctx, pushed) })
	return g.Wait()
}

func sameWorkloads(a, b *mesh.Mesh) error {
	if workloadKey(a) != workloadKey(b) {
		return errors.New("the new config declares other workloads than the running mesh: start a new mesh for it")
	}
	return nil
}

// Repush translates and pushes every proxy's config again, for changes
// made outside the mesh (certificates), and waits for every ACK.
func (r *Runtime) Repush(ctx context.Context) error {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	r.configs = nil // what changed is outside the inputs: translate every proxy
	return r.pushAll(ctx)
}

// RotateWorkload issues a new certificate for a service account and pushes
// it (SDS), returning it; the next connection presents it.
func (r *Runtime) RotateWorkload(ctx context.Context, ns, sa string) (*certs.KeyPair, error) {
	kp, err := r.certs.RotateWorkload(ns, sa)
	if err != nil {
		return nil, err
	}
	return kp, r.Repush(ctx)
}

// Pod returns a running workload by ref ("name" or "ns/name").
func (r *Runtime) Pod(ref string) (*Pod, bool) {
	m, _ := r.current()
	w, ok := m.Workload(ref)
	if !ok {
		return nil, false
	}
	p, ok := r.pods[w.ID()]
	return p, ok
}

// Certs is the run's certificate store.
func (r *Runtime) Certs() *certs.Store { return r.certs }

// Close removes every container and network of the run and the run dir.
// It waits for each removal: its time grows with the pods (one engine call
// per container, one at a time for those attached to the network); only
// an engine that leaves one call unanswered for removeCallBound ends it
// early.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		ctx := context.Background()
		var errs []error
		if r.lost != nil && r.lost.stop != nil {
			r.lost.stop() // what Close removes is no loss
		}
		if r.cli != nil && r.RunID != "" {
			errs = append(errs, explainEngineLoss(r.cli, removeRun(ctx, r.cli, r.RunID)))
		}
		if r.xds != nil {
			r.xds.Stop()
		}
		if r.Dir != "" {
			errs = append(errs, os.RemoveAll(r.Dir))
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// podStartsPerCPU bounds how many pods start at once.
const podStartsPerCPU = 4
