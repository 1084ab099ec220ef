package harness

// Reliability: nothing leaked, nothing flaky, nothing accepted silently.
// These tests run the real runtime (Docker, Envoy) and check what the
// harness promises on its unhappy paths: every exit path removes what the
// run made, a later run removes what a dead one left, a crashed sidecar or a
// restarted control plane ends with proxies provably on current config, and
// no key material leaks into files, logs or a routable admin port.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

const reliabilityTwoPods = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}]
`

// b's sidecar accepts plaintext only.
// https://istio.io/latest/docs/reference/config/security/peer_authentication/
const reliabilityDisableB = `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: default}
spec:
  selector: {matchLabels: {app: b}}
  mtls: {mode: DISABLE}
`

// a -> b through both sidecars; with no PeerAuthentication auto mTLS makes
// the hop mTLS.
// https://istio.io/latest/docs/ops/configuration/traffic-management/tls-configuration/#auto-mtls
var checkAB = &mesh.Check{
	Name: "a-to-b", Namespace: "default", From: "a",
	To:     "http://b.default.svc.cluster.local:8080/",
	Expect: &mesh.Expect{Result: outcome.OK, Wire: []outcome.Wire{outcome.MTLS}},
}

var checkABPlain = &mesh.Check{
	Name: "a-to-b-plain", Namespace: "default", From: "a",
	To:     "http://b.default.svc.cluster.local:8080/",
	Expect: &mesh.Expect{Result: outcome.OK, Wire: []outcome.Wire{outcome.Plaintext}},
}

func liveOnly(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("live test: needs Docker and Envoy (run without -short)")
	}
}

func parseBundle(t *testing.T, y string) *mesh.Mesh {
	t.Helper()
	m, err := mesh.Parse(t.Name()+".yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testDocker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := dockerClient(testCtx(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// logSink is a WithLogf target that also keeps every line, so a test can
// search what the harness logged.
type logSink struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logf(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	s.t.Log(line)
}

func (s *logSink) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// startLive starts m and closes it when the test ends.
func startLive(t *testing.T, m *mesh.Mesh, opt ...Option) *Runtime {
	t.Helper()
	rt, err := Start(testCtx(t, 3*time.Minute), m, append([]Option{WithLogf(t.Logf)}, opt...)...)
	if err != nil {
		t.Fatalf("starting the mesh: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rt
}

func runCheck(t *testing.T, rt *Runtime, c *mesh.Check) {
	t.Helper()
	res, err := rt.Run(testCtx(t, 30*time.Second), t.Name(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != outcome.Pass {
		t.Fatalf("check %s: %s", c.Name, res.Explain())
	}
}

// leftovers lists the containers and networks labelled with a run id.
func leftovers(t *testing.T, cli *client.Client, runID string) []string {
	t.Helper()
	out, err := runLeftovers(testCtx(t, 30*time.Second), cli, runID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runsOfThisProcess returns the run ids of containers and networks this
// test process owns (by the pid label), so a Start that fails without
// returning a Runtime can still be checked for leftovers.
func runsOfThisProcess(t *testing.T, cli *client.Client) map[string]bool {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	f := client.Filters{}.Add("label", labelPID+"="+strconv.Itoa(os.Getpid()))
	runs := map[string]bool{}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		runs[c.Labels[labelRun]] = true
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		runs[n.Labels[labelRun]] = true
	}
	return runs
}

// Close removes every container, the network and the run dir.
func TestReliabilityCloseRemovesEverything(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	rt, err := Start(testCtx(t, 3*time.Minute), parseBundle(t, reliabilityTwoPods), WithLogf(t.Logf))
	if err != nil {
		t.Fatalf("starting the mesh: %v", err)
	}
	runID, dir, netID := rt.RunID, rt.Dir, rt.netw.ID
	if got := leftovers(t, cli, runID); len(got) < 5 { // 2 agents (each with its init), 2 proxies and the network
		t.Errorf("while running, run %s has only %v; the label lookup would not see leftovers", runID, got)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := leftovers(t, cli, runID); len(got) > 0 {
		t.Errorf("after Close, run %s left %s", runID, strings.Join(got, "; "))
	}
	if _, err := cli.NetworkInspect(testCtx(t, 10*time.Second), netID, client.NetworkInspectOptions{}); !isNotFound(err) {
		t.Errorf("after Close, network %s: inspect error %v, want not found", netID, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, run dir %s: %v, want it gone", dir, err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A Start that fails leaves nothing: no container, network or run dir.
func TestReliabilityFailedStartLeavesNothing(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	// clash gives b a port on 15001, the proxy's outbound capture port.
	// mesh validation rejects that, so the mesh is changed after loading:
	// every proxy then gets an outbound listener 0.0.0.0_15001 that
	// duplicates virtualOutbound, and NACKs its listeners.
	clash := func(m *mesh.Mesh) {
		w, _ := m.Workload("b")
		w.Ports = append(w.Ports, mesh.WorkloadPort{Name: "tcp-clash", Port: 15001})
		for _, s := range m.Services {
			if s.Name == "b" {
				s.Ports = append(s.Ports, mesh.ServicePort{Name: "tcp-clash", Port: 15001, TargetPort: 15001})
			}
		}
	}
	tests := []struct {
		name    string
		change  func(*mesh.Mesh)
		opts    []Option
		wantErr string
	}{
		// The deadline passes while pods are created: everything made so
		// far (network, maybe containers) must go.
		{"start timeout", nil, []Option{WithStartTimeout(time.Nanosecond)}, "deadline"},
		{"proxy rejects its config", clash, nil, "NACK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Run dirs go under a private TMPDIR so other processes' runs
			// cannot be mistaken for ours. It is short: Unix socket paths
			// under it must stay within 107 bytes (t.TempDir is too long).
			tmp, err := os.MkdirTemp("", "rel")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(tmp) })
			t.Setenv("TMPDIR", tmp)
			before := runsOfThisProcess(t, cli)
			m := parseBundle(t, reliabilityTwoPods)
			if tc.change != nil {
				tc.change(m)
			}
			rt, err := Start(testCtx(t, 3*time.Minute), m, append([]Option{WithLogf(t.Logf)}, tc.opts...)...)
			if err == nil {
				_ = rt.Close()
				t.Fatal("Start succeeded, want an error")
			}
			t.Logf("Start failed as expected: %v", err)
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Start error %q does not mention %q", err, tc.wantErr)
			}
			for run := range runsOfThisProcess(t, cli) {
				if !before[run] {
					t.Errorf("failed Start left run %s: %s", run, strings.Join(leftovers(t, cli, run), "; "))
				}
			}
			ents, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				t.Errorf("failed Start left %s in the temp dir", filepath.Join(tmp, e.Name()))
			}
		})
	}
}

// Start removes what runs of dead processes left, and nothing of live ones.
func TestReliabilitySweepsDeadRuns(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	ctx := testCtx(t, 3*time.Minute)
	host, _ := os.Hostname()

	// A pid that surely is not alive: a child we started and reaped.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := child.ProcessState.Pid()
	if processAlive(deadPID) {
		t.Skipf("pid %d was reused at once; cannot simulate a dead run", deadPID)
	}

	// Any Start on this host (parallel test packages, other runs) sweeps dead
	// runs: hold the sweep lock while the dead run is set up, or another
	// process may remove half of it before it is counted.
	unlock, err := lockFile(filepath.Join(cacheDir(), "sweep.lock"))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	deadRun, liveRun := "dead"+suffix, "live"+suffix
	labels := func(run string, pid int) map[string]string {
		return map[string]string{labelRun: run, labelPID: strconv.Itoa(pid), labelHost: host, labelRole: "test"}
	}
	mkNet := func(run string, pid int) string {
		n, err := cli.NetworkCreate(ctx, "meshtls-test-"+run, client.NetworkCreateOptions{Internal: true, Labels: labels(run, pid)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = cli.NetworkRemove(context.Background(), n.ID, client.NetworkRemoveOptions{}) })
		return n.ID
	}
	mkNet(deadRun, deadPID)
	mkNet(liveRun, os.Getpid())

	// A created (never started) container of the dead run, from our pod image.
	images, err := ensureImages(ctx, cli, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "meshtls-test-" + deadRun,
		Config: &container.Config{Image: images.Pod, Labels: labels(deadRun, deadPID), Cmd: []string{"agent"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	got := leftovers(t, cli, deadRun)
	unlock()
	if len(got) != 2 {
		t.Fatalf("dead run %s set up with %v, want a container and a network", deadRun, got)
	}

	startLive(t, parseBundle(t, `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
`))
	if got := leftovers(t, cli, deadRun); len(got) > 0 {
		t.Errorf("Start did not remove the dead run (pid %d): %s", deadPID, strings.Join(got, "; "))
	}
	if got := leftovers(t, cli, liveRun); len(got) != 1 {
		t.Errorf("Start touched the run of a live process (pid %d): have %v, want its network", os.Getpid(), got)
	}
}

const childEnv = "MESHTLS_RELIABILITY_CHILD"

// TestReliabilityChildProcess is the process TestReliabilityKilledRunIsSwept
// kills: it starts a mesh, says so, and waits to be killed.
func TestReliabilityChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper process for TestReliabilityKilledRunIsSwept")
	}
	rt, err := Start(testCtx(t, 3*time.Minute), parseBundle(t, reliabilityTwoPods))
	if err != nil {
		fmt.Printf("START FAILED %v\n", err)
		t.Fatal(err)
	}
	fmt.Printf("MESH UP run=%s dir=%s\n", rt.RunID, rt.Dir)
	<-testCtx(t, 3*time.Minute).Done() // the parent kills us long before
	_ = rt.Close()
	t.Fatal("not killed")
}

// A process killed with SIGKILL runs no cleanup; the next run's sweep
// removes what it left (meshtls run itself cleans on SIGINT/SIGTERM).
func TestReliabilityKilledRunIsSwept(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	ctx := testCtx(t, 4*time.Minute)
	cmd, out := startChildRun(t, ctx)
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	var runID, dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "MESH UP "); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "run="); ok {
					runID = v
				}
				if v, ok := strings.CutPrefix(f, "dir="); ok {
					dir = v
				}
			}
			break
		}
		t.Logf("child: %s", line)
	}
	if runID == "" {
		t.Fatalf("the child never reported its mesh up (scan error: %v)", sc.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	if got := leftovers(t, cli, runID); len(got) == 0 {
		t.Fatalf("the killed child's run %s left nothing: the test proves nothing", runID)
	}
	// The sweep also meets other dead runs on this shared engine (another
	// process may be removing them at the same time, or dockerd may keep a
	// stale endpoint on their network): Start only warns about those, and
	// so does this test. The child's own run is what must be gone.
	if err := sweepDeadRuns(ctx, cli, t.Logf); err != nil {
		t.Logf("sweepDeadRuns: %v", err)
	}
	if got := leftovers(t, cli, runID); len(got) > 0 {
		t.Errorf("after the sweep, killed run %s left %s", runID, strings.Join(got, "; "))
	}
	t.Run("run dir", func(t *testing.T) {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return
		}
		// The sweep removes the dead run's directory (removeRunDirs): it
		// holds private keys.
		t.Errorf("the sweep left the killed run's directory %s (with its 0600 keys)", dir)
		_ = os.RemoveAll(dir)
	})
}

func envoyStartedAt(t *testing.T, rt *Runtime, p *Pod) string {
	t.Helper()
	res, err := rt.cli.ContainerInspect(testCtx(t, 10*time.Second), p.envoy.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container.State.StartedAt
}

// A sidecar that crashes and is restarted is served its config again and
// carries mTLS as before, on either end of the call.
func TestReliabilityProxyRestart(t *testing.T) {
	liveOnly(t)
	rt := startLive(t, parseBundle(t, reliabilityTwoPods))
	runCheck(t, rt, checkAB)
	for _, ref := range []string{"b", "a"} {
		p, _ := rt.Pod(ref)
		started := envoyStartedAt(t, rt, p)
		if err := rt.RestartProxy(testCtx(t, time.Minute), ref); err != nil {
			t.Fatalf("restarting %s's proxy: %v", ref, err)
		}
		if again := envoyStartedAt(t, rt, p); again == started {
			t.Fatalf("%s's Envoy container still has start time %s: it was not restarted", ref, started)
		}
		runCheck(t, rt, checkAB)
	}
	// Logs are followed again after a restart, from the restart on: an
	// access-log line seen twice would mean two streams feed one buffer.
	for _, ref := range []string{"a", "b"} {
		p, _ := rt.Pod(ref)
		seen := map[string]bool{}
		for _, l := range p.Logs.Lines() {
			if seen[l] {
				t.Errorf("%s's access log has a line twice: %s", ref, l)
			}
			seen[l] = true
		}
		if len(seen) == 0 {
			t.Errorf("%s's access log is empty after three calls", ref)
		}
	}
}

// A control plane that restarts with new config gets every proxy onto it,
// proven by ACKs on the new server; a proxy that cannot reconnect is
// reported by name instead of staying on stale config unnoticed.
func TestReliabilityControlPlaneRestart(t *testing.T) {
	liveOnly(t)
	rt := startLive(t, parseBundle(t, reliabilityTwoPods))
	runCheck(t, rt, checkAB)

	if err := rt.RestartControlPlane(testCtx(t, time.Minute), parseBundle(t, reliabilityTwoPods+reliabilityDisableB)); err != nil {
		t.Fatalf("restart with b DISABLE: %v", err)
	}
	runCheck(t, rt, checkABPlain)

	// b's Envoy is frozen while the control plane restarts: it cannot
	// reconnect, and the restart must say so. SIGSTOP, not docker pause:
	// under load the engine's cgroup freezer gave up ("OCI runtime pause
	// failed: unable to freeze") in a CI run; a stopped process is frozen
	// by the kernel at once (Envoy is its container's first process, and a
	// signal from outside the container's PID namespace reaches it).
	b, _ := rt.Pod("b")
	id := b.envoy.GetContainerID()
	if _, err := rt.cli.ContainerKill(testCtx(t, 10*time.Second), id, client.ContainerKillOptions{Signal: "SIGSTOP"}); err != nil {
		t.Fatal(err)
	}
	paused := true
	unpause := func() {
		if paused {
			if _, err := rt.cli.ContainerKill(context.Background(), id, client.ContainerKillOptions{Signal: "SIGCONT"}); err != nil {
				t.Errorf("continuing b's proxy: %v", err)
			}
			paused = false
		}
	}
	t.Cleanup(unpause)
	err := rt.RestartControlPlane(testCtx(t, 5*time.Second), parseBundle(t, reliabilityTwoPods))
	if err == nil {
		t.Fatal("control plane restart succeeded although b's proxy is frozen: stale config would go unnoticed")
	}
	t.Logf("restart with a frozen proxy failed as it should: %v", err)
	for _, want := range []string{"default/b", "never connected"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	unpause()
	// Once b can reconnect it picks up the config (auto mTLS again).
	if err := rt.RestartControlPlane(testCtx(t, time.Minute), nil); err != nil {
		t.Fatalf("restart after unfreezing b: %v", err)
	}
	runCheck(t, rt, checkAB)
}

// Keys are 0600 and only in .key files, the network is internal, admin is
// never on a routable address, and no key reaches a log or an artifact.
func TestReliabilityHygiene(t *testing.T) {
	liveOnly(t)
	sink := &logSink{t: t}
	rt := startLive(t, parseBundle(t, reliabilityTwoPods), WithLogf(sink.logf))
	runCheck(t, rt, checkAB)

	keys := 0
	err := filepath.WalkDir(rt.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil // sockets
		}
		if strings.HasSuffix(path, ".key") {
			keys++
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s has mode %o, want 0600", path, perm)
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s holds a private key but is not a .key file (mode %o)", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Errorf("no .key file under %s: the permission check saw nothing", rt.Dir)
	}

	n, err := rt.cli.NetworkInspect(testCtx(t, 10*time.Second), rt.netw.ID, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Network.Internal {
		t.Errorf("network %s is not internal: pods could reach outside the machine", n.Network.Name)
	}

	boots, err := filepath.Glob(filepath.Join(rt.Dir, "pods", "*", "envoy.json"))
	if err != nil || len(boots) != 2 {
		t.Fatalf("bootstraps %v (%v), want 2", boots, err)
	}
	for _, path := range boots {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var boot struct {
			Admin struct {
				Address struct {
					Pipe *struct {
						Path string `json:"path"`
					} `json:"pipe"`
					SocketAddress *struct {
						Address string `json:"address"`
					} `json:"socket_address"`
				} `json:"address"`
			} `json:"admin"`
		}
		if err := json.Unmarshal(b, &boot); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		a := boot.Admin.Address
		switch {
		case a.Pipe != nil && a.Pipe.Path != "":
		case a.SocketAddress != nil && (a.SocketAddress.Address == "127.0.0.1" || a.SocketAddress.Address == "::1"):
		default:
			t.Errorf("%s: admin address %s is neither a Unix socket nor loopback", path, b)
		}
	}

	// Artifacts are what a failed check leaves for people to read.
	art, err := rt.SaveArtifacts(testCtx(t, 30*time.Second), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	_ = filepath.WalkDir(art, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("artifact %s holds a private key", path)
			}
		}
		return nil
	})
	for _, p := range rt.pods {
		if p.EnvLog != nil {
			logs = append(logs, p.EnvLog.Lines()...)
			logs = append(logs, p.Logs.Lines()...)
		}
	}
	if strings.Contains(sink.all(), "PRIVATE KEY") {
		t.Error("the harness logged a private key")
	}
	if strings.Contains(strings.Join(logs, "\n"), "PRIVATE KEY") {
		t.Error("an Envoy logged a private key")
	}
}

// startChildRun starts TestReliabilityChildProcess in a separate process (its
// own pid label and sweep) and returns it with its stdout.
func startChildRun(t *testing.T, ctx context.Context) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReliabilityChildProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}
