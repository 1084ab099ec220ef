package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/meshtls/meshtls/pod"
)

type hostConfig = container.HostConfig

func containerNetworkMode(s string) container.NetworkMode { return container.NetworkMode(s) }

// uncancelled is the context for creating Docker objects: a create that is
// cancelled midway may still complete in the engine after the run's
// cleanup listed what to remove, leaving it behind. Creates therefore run
// to their end (each wait strategy has its own deadline) and the caller's
// cancellation is seen right after, so cleanup finds everything.
func uncancelled(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// The waits are on facts (the agent's ready line, the init's exit); a short
// poll interval keeps testcontainers from adding 100ms to each.
func waitLog(line string) wait.Strategy {
	return wait.ForLog(line).WithStartupTimeout(60 * time.Second).WithPollInterval(5 * time.Millisecond)
}

func waitExit() wait.Strategy {
	return wait.ForExit().WithExitTimeout(60 * time.Second).WithPollInterval(5 * time.Millisecond)
}

func containerLogs(ctx context.Context, c testcontainers.Container) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return strings.TrimSpace(string(b))
}

// chownOrOpen gives uid a directory: chown when we may (root), otherwise
// open it to everyone (only sockets and the bootstrap live there).
func chownOrOpen(dir string, uid int) error {
	if os.Geteuid() == 0 {
		return os.Chown(dir, uid, uid)
	}
	return os.Chmod(dir, 0o777)
}

// LogBuffer collects a container's output lines and lets a caller wait for
// a line that satisfies a predicate.
type LogBuffer struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	changed chan struct{}
}

func newLogBuffer() *LogBuffer { return &LogBuffer{changed: make(chan struct{})} }

func (b *LogBuffer) write(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, string(b.partial[:i]))
		b.partial = b.partial[i+1:]
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// Lines returns a copy of all complete lines so far.
func (b *LogBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// Len is the number of complete lines so far (a position for Since).
func (b *LogBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

// Since returns the lines after position n.
func (b *LogBuffer) Since(n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > len(b.lines) {
		return nil
	}
	return append([]string(nil), b.lines[n:]...)
}

// WaitFor waits until a line after position n satisfies ok, or ctx ends.
func (b *LogBuffer) WaitFor(ctx context.Context, n int, ok func(string) bool) (string, error) {
	for {
		b.mu.Lock()
		for i := n; i < len(b.lines); i++ {
			if ok(b.lines[i]) {
				l := b.lines[i]
				b.mu.Unlock()
				return l, nil
			}
		}
		if len(b.lines) > n {
			n = len(b.lines)
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// writerFunc adapts a LogBuffer to io.Writer for stdcopy.
type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

// follow streams a container's stdout and stderr into two buffers until the
// container is gone (the stream ends when it is removed).
func (r *Runtime) follow(id string, out, errb *LogBuffer) error {
	rc, err := r.cli.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return err
	}
	go func() {
		defer rc.Close()
		_, _ = stdcopy.StdCopy(writerFunc(out.write), writerFunc(errb.write), rc)
	}()
	return nil
}

// AgentClient talks to a pod's agent over its Unix socket.
type AgentClient struct {
	sock string
	hc   *http.Client
}

func newAgentClient(sock string) *AgentClient {
	return &AgentClient{sock: sock, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (a *AgentClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Call makes one call from inside the pod.
func (a *AgentClient) Call(ctx context.Context, req pod.CallRequest) (*pod.CallResult, error) {
	var res pod.CallResult
	if err := a.do(ctx, http.MethodPost, "/call", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Flows returns the connections captured after seq.
func (a *AgentClient) Flows(ctx context.Context, since uint64) ([]pod.Flow, error) {
	var fl []pod.Flow
	err := a.do(ctx, http.MethodGet, fmt.Sprintf("/flows?since=%d", since), nil, &fl)
	return fl, err
}

// Pcap returns the pod's capture as a pcap file.
func (a *AgentClient) Pcap(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/pcap", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}
