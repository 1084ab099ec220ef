package harness

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go/wait"
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
