package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// privateEngine is a Docker engine of a test's own: its own dockerd (with
// the containerd it supervises, or its own namespaces of a system
// containerd), data, sockets and network namespace. A test may stop and
// restart it while other runs use the shared engine, whose daemon, bridges
// and address plans it never sees. Everything it holds goes with the test.
type privateEngine struct {
	dir    string
	host   string    // DOCKER_HOST value
	netns  *exec.Cmd // holds the network namespace across restarts
	cmd    *exec.Cmd // the running dockerd, nil while stopped
	exited chan struct{}
	mu     sync.Mutex
	log    []string // the last lines dockerd printed
}

// startPrivateEngine starts a private engine and stops and removes it when
// the test ends. It needs root, dockerd (Debian's docker.io) and
// util-linux's unshare and nsenter.
func startPrivateEngine(t *testing.T) *privateEngine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test starts a private Docker engine in its own network namespace, which needs root (CI runs as root): run it as root, or with -short to skip live tests")
	}
	for _, bin := range []string{"dockerd", "unshare", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("this test starts a private Docker engine and needs %s on PATH (Debian: apt-get install docker.io util-linux): %v", bin, err)
		}
	}
	// Short: containerd's and the engine's Unix sockets live under it.
	dir, err := os.MkdirTemp("", "mte")
	if err != nil {
		t.Fatal(err)
	}
	e := &privateEngine{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock")}
	t.Cleanup(func() { e.remove(t) })
	// Its own config file: the engine reads no /etc/docker/daemon.json
	// and keeps its key beside it.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its own network namespace: its bridges, addresses and firewall rules
	// cannot clash with the shared engine's (both pick the run networks'
	// prefixes; neither knows the other's). The holder says when the
	// namespace exists; until then nsenter would enter the host's.
	e.netns = exec.Command("unshare", "--net", "sh", "-c", "echo ready; exec sleep infinity")
	e.netns.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := e.netns.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.netns.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("unshare --net: %q, %v", line, err)
	}
	own, _ := os.Readlink("/proc/self/ns/net")
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", e.netns.Process.Pid))
	if err != nil || theirs == own {
		t.Fatalf("the private engine's network namespace is %q (%v), the test's is %q: refusing to start an engine in the host's", theirs, err, own)
	}
	e.start(t)
	return e
}

// start starts dockerd and returns once its API listens.
func (e *privateEngine) start(t *testing.T) {
	t.Helper()
	d := e.dir
	ns := "meshtls-test-" + filepath.Base(d)
	cmd := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", e.netns.Process.Pid), "--",
		"dockerd",
		"--config-file", filepath.Join(d, "daemon.json"),
		"--host", e.host,
		"--data-root", filepath.Join(d, "root"),
		"--exec-root", filepath.Join(d, "exec"),
		"--pidfile", filepath.Join(d, "dockerd.pid"),
		"--bridge", "none", "--iptables=false", "--ip-masq=false",
		// Only used when dockerd shares a running system containerd.
		"--containerd-namespace", ns, "--containerd-plugins-namespace", ns+"-plugins",
	)
	// A test process that dies (a timeout) stops its engine too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			line := sc.Text()
			e.mu.Lock()
			e.log = append(e.log, line)
			if len(e.log) > 40 {
				e.log = e.log[1:]
			}
			e.mu.Unlock()
			if !said && strings.Contains(line, "API listen on") {
				said = true
				close(listening)
			}
		}
		_ = cmd.Wait()
		close(e.exited)
	}()
	select {
	case <-listening:
	case <-e.exited:
		e.cmd = nil
		t.Fatalf("the private dockerd exited before it listened (%v); it said:\n%s", cmd.ProcessState, e.said())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the private dockerd does not listen after 2 minutes; it said:\n%s", e.said())
	}
}

// stop stops dockerd as a service manager does (SIGTERM: it stops every
// container, then its containerd) and returns once it has exited.
func (e *privateEngine) stop(t *testing.T) {
	t.Helper()
	if e.cmd == nil {
		return
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("stopping the private dockerd: %v", err)
	}
	select {
	case <-e.exited:
	case <-time.After(2 * time.Minute):
		_ = e.cmd.Process.Kill()
		<-e.exited
		t.Errorf("the private dockerd did not stop within 2 minutes of SIGTERM (killed); it said:\n%s", e.said())
	}
	e.cmd = nil
}

// restart stops and starts dockerd, as `systemctl restart docker` does.
func (e *privateEngine) restart(t *testing.T) {
	t.Helper()
	e.stop(t)
	e.start(t)
}

// client is a Docker client of the private engine only.
func (e *privateEngine) client(t *testing.T, ctx context.Context) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(e.host))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatalf("the private engine at %s: %v", e.host, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (e *privateEngine) said() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, "\n")
}

// remove stops the engine and its namespace and removes its directory
// (images, containers, sockets).
func (e *privateEngine) remove(t *testing.T) {
	e.stop(t)
	if e.netns != nil && e.netns.Process != nil {
		_ = e.netns.Process.Kill()
		_ = e.netns.Wait()
	}
	// A stopped engine unmounts its layers; a killed one may not have.
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, l := range bytes.Split(b, []byte("\n")) {
			if f := strings.Fields(string(l)); len(f) > 4 && strings.HasPrefix(f[4], e.dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Errorf("removing the private engine's directory: %v", err)
	}
}
