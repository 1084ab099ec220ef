package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

type hostConfig = container.HostConfig

func containerNetworkMode(s string) container.NetworkMode { return container.NetworkMode(s) }

// uncancelled is the context for creating Docker objects: a create that is
// cancelled midway may still complete in the engine after the run's
// cleanup listed what to remove, leaving it behind. Creates therefore run
// to their end (each wait strategy has its own deadline) and the caller's
// cancellation is seen right after, so cleanup finds everything.
func uncancelled(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// waitLine waits until container id prints line on stdout, on one
// streamed logs request (the engine pushes the output; a poll would ask it
// hundreds of times per container while a mesh starts). A container that
// exits first fails with what it printed.
func (r *Runtime) waitLine(ctx context.Context, id, line string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rc, err := r.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	out, errb := newLogBuffer(), newLogBuffer()
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(writerFunc(out.write), writerFunc(errb.write), rc)
		done <- err
	}()
	waitCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-done: // the stream ended: the container exited
		case <-waitCtx.Done():
			return
		}
		stop()
	}()
	if _, err := out.WaitFor(waitCtx, 0, func(l string) bool { return l == line }); err == nil || slices.Contains(out.Lines(), line) {
		return nil
	}
	said := strings.TrimSpace(strings.Join(append(out.Lines(), errb.Lines()...), "\n"))
	if ctx.Err() != nil {
		return fmt.Errorf("not ready after 60s (%q not printed); it said:\n%s", line, said)
	}
	return fmt.Errorf("exited before it was ready; it said:\n%s", said)
}
