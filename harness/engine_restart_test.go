package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// engineChildEnv selects TestEngineRestartChildProcess's case: the engine
// is "restarted" before the run's next calls, or "down" until the run
// has ended.
const engineChildEnv = "MESHTLS_ENGINE_RESTART_CHILD"

// Live: the Docker engine restarted in the middle of a run. The run's next
// Apply, Repush and check fail at once with what happened and the fix,
// Close returns, and nothing of the run is left once the next run's sweep
// has run. The engine is a private dockerd this test starts (its own
// network namespace, data and sockets), never the shared one; the run is
// a child process pointed at it by its own DOCKER_HOST, since
// testcontainers picks one engine per process.
func TestEngineRestartMidRun(t *testing.T) {
	liveOnly(t)
	ctx := testCtx(t, 8*time.Minute)
	e := startPrivateEngine(t)
	cli := e.client(t, ctx)

	t.Run("restarted before the next call", func(t *testing.T) {
		c := startEngineChild(t, ctx, e, "restarted")
		c.waitUp(t)
		e.restart(t)
		c.proceed(t)
		c.wait(t)
		// Close ran on the restarted engine and removed the run itself.
		if got := engineLeftovers(t, ctx, cli); len(got) > 0 {
			t.Errorf("after Close on the restarted engine: %s", strings.Join(got, "; "))
		}
		c.dirGone(t)
	})

	t.Run("down until the run ended", func(t *testing.T) {
		c := startEngineChild(t, ctx, e, "down")
		c.waitUp(t)
		e.stop(t)
		c.proceed(t)
		c.wait(t)
		e.start(t)
		// The engine keeps the stopped containers and the network of the
		// run, whose Close could remove nothing: the next run's sweep does.
		if got := engineLeftovers(t, ctx, cli); len(got) == 0 {
			t.Fatal("the run left nothing on the engine although its Close ran while the engine was down: the sweep below proves nothing")
		} else {
			t.Logf("left by the run: %s", strings.Join(got, "; "))
		}
		if err := sweepDeadRuns(ctx, cli, t.Logf); err != nil {
			t.Errorf("the next run's sweep: %v", err)
		}
		if got := engineLeftovers(t, ctx, cli); len(got) > 0 {
			t.Errorf("after the next run's sweep: %s", strings.Join(got, "; "))
		}
		c.dirGone(t)
	})
}

// TestEngineRestartChildProcess is the run of TestEngineRestartMidRun: it
// starts a mesh on the private engine (DOCKER_HOST), says so, waits for
// the parent to restart or stop the engine, then checks what the run does.
func TestEngineRestartChildProcess(t *testing.T) {
	mode := os.Getenv(engineChildEnv)
	if mode == "" {
		t.Skip("helper process for TestEngineRestartMidRun")
	}
	want := os.Getenv("DOCKER_HOST")
	if got := testDocker(t).DaemonHost(); got != want {
		t.Fatalf("the harness talks to %s, not the private engine %s (tc.host in ~/.testcontainers.properties wins over DOCKER_HOST)", got, want)
	}
	rt, err := Start(testCtx(t, 3*time.Minute), parseBundle(t, reliabilityTwoPods), WithLogf(t.Logf))
	if err != nil {
		t.Fatalf("starting the mesh: %v", err)
	}
	fmt.Printf("MESH UP run=%s dir=%s\n", rt.RunID, rt.Dir)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		_ = rt.Close()
		t.Fatalf("waiting for the parent: %v", err)
	}
	// The run learnt it when the engine went (its event stream ended).
	select {
	case <-rt.lost.ctx.Done():
	case <-time.After(time.Minute):
		t.Error("a minute after the engine stopped the run does not know")
	}
	// No deadline on these calls: they must end by themselves, at once,
	// with the reason and the fix (an Apply would otherwise wait for ACKs
	// from proxies that are gone).
	wantErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s after the engine %s: no error", what, mode)
			return
		}
		for _, s := range []string{"the run's mesh is gone", "Docker engine", "restart", "start the run again"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s after the engine %s: %q does not say %q", what, mode, err, s)
			}
		}
	}
	_, err = rt.Run(context.Background(), t.Name(), checkAB)
	wantErr("a check", err)
	wantErr("Apply", rt.Apply(context.Background(), parseBundle(t, reliabilityTwoPods+pa("default", "istio-system", "", "STRICT"))))
	wantErr("Repush", rt.Repush(context.Background()))
	err = rt.Close()
	switch mode {
	case "restarted":
		if err != nil {
			t.Errorf("Close on the restarted engine: %v", err)
		}
	case "down":
		// It could remove nothing, and says why and what happens next.
		if err == nil || !strings.Contains(err.Error(), "the next run removes what this one left") {
			t.Errorf("Close with the engine down: %v", err)
		}
		t.Logf("Close with the engine down returned: %v", err)
	}
}

// engineChild is a run of TestEngineRestartChildProcess.
type engineChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	up    chan string   // the run's dir, once its mesh is up
	done  chan error    // the process's exit
	ended chan struct{} // its output read to the end
	dir   string        // the run's dir
}

func startEngineChild(t *testing.T, ctx context.Context, e *privateEngine, mode string) *engineChild {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEngineRestartChildProcess$", "-test.v", "-test.count=1")
	// Only the child talks to the private engine; this process and the
	// tests around it keep theirs.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DOCKER_HOST="+e.host, engineChildEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &engineChild{cmd: cmd, stdin: stdin, up: make(chan string, 1), done: make(chan error, 1), ended: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			t.Logf("child: %s", line)
			if rest, ok := strings.CutPrefix(line, "MESH UP "); ok {
				for _, f := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(f, "dir="); ok {
						c.up <- v
					}
				}
			}
		}
		c.done <- cmd.Wait()
		close(c.ended)
	}()
	// The output is logged to t: it must end before t does.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.ended
	})
	return c
}

func (c *engineChild) waitUp(t *testing.T) {
	t.Helper()
	select {
	case c.dir = <-c.up:
	case err := <-c.done:
		c.done <- err
		t.Fatalf("the child ended before its mesh was up: %v", err)
	}
}

// proceed tells the child the engine has been restarted or stopped.
func (c *engineChild) proceed(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the child to end and fails t when its test failed.
func (c *engineChild) wait(t *testing.T) {
	t.Helper()
	if err := <-c.done; err != nil {
		t.Fatalf("the child's run failed (its output is above): %v", err)
	}
}

// dirGone fails t when the child's run dir (keys, sockets) is left.
func (c *engineChild) dirGone(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(c.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the run's directory %s is left (%v)", c.dir, err)
		_ = os.RemoveAll(c.dir)
	}
}

// engineLeftovers lists every container and network on the engine that
// carries meshtls's run label.
func engineLeftovers(t *testing.T, ctx context.Context, cli *client.Client) []string {
	t.Helper()
	f := client.Filters{}.Add("label", labelRun)
	var out []string
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		out = append(out, fmt.Sprintf("container %s (%s)", strings.Join(c.Names, ","), c.State))
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		out = append(out, "network "+n.Name)
	}
	return out
}
