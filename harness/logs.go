package harness

import (
	"bytes"
	"context"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

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
