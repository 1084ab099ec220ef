package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
)

// removeRun force-removes every container, then every network, of a run.
//
// Containers that own an endpoint on the run's network (pod agents, plain
// workloads) are removed one at a time. Docker 20.10's libnetwork keeps a
// per-network endpoint count next to the endpoints; removing many attached
// containers of one network at once can leave that count above zero with
// no endpoint left (reproduced on this engine: 40 containers removed
// concurrently leaked the count in 3 of 24 rounds; the same starts with
// removals one by one, 0 of 16). From then on `docker network rm` says
// "has active endpoints" although nothing is attached, and only an engine
// restart recounts. Containers that share a pod's network namespace
// (Envoy) own no endpoint and go concurrently.
//
// Each engine call is bounded by removeCallBound, the whole removal only by
// ctx: it takes as long as the engine takes to remove the run's
// containers, one after the other, and stops at the first call the engine
// does not answer in time.
func removeRun(ctx context.Context, cli *client.Client, runID string) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	bounded := func(call func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, removeCallBound)
		defer cancel()
		err := call(cctx)
		if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			stop(fmt.Errorf("the Docker engine answered no call of the removal within %s: the next run's sweep removes what is left", removeCallBound))
		}
		return err
	}
	f := client.Filters{}.Add("label", labelRun+"="+runID)
	var cs client.ContainerListResult
	err := bounded(func(ctx context.Context) (err error) {
		cs, err = cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		return err
	})
	if err != nil {
		return errors.Join(err, context.Cause(ctx))
	}
	var errs []error
	var mu sync.Mutex
	remove := func(id string) {
		err := bounded(func(ctx context.Context) error {
			_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			return err
		})
		if err != nil && !isNotFound(err) && ctx.Err() == nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("removing container %s: %w", id[:12], err))
			mu.Unlock()
		}
	}
	var attached []string
	var g errgroup.Group
	for _, c := range cs.Items {
		if strings.HasPrefix(c.HostConfig.NetworkMode, "container:") {
			g.Go(func() error { remove(c.ID); return nil })
		} else {
			attached = append(attached, c.ID)
		}
	}
	g.Go(func() error {
		for _, id := range attached {
			remove(id)
		}
		return nil
	})
	_ = g.Wait()
	var ns client.NetworkListResult
	err = bounded(func(ctx context.Context) (err error) {
		ns, err = cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		return err
	})
	if ctx.Err() != nil {
		return errors.Join(append(errs, context.Cause(ctx))...)
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, n := range ns.Items {
		errs = append(errs, bounded(func(ctx context.Context) error { return removeNetwork(ctx, cli, n.ID, n.Name, runID) }))
	}
	return errors.Join(errs...)
}

// removeCallBound bounds one engine call of a run's removal. Removing a
// container takes the engine well under a second, a few seconds on a
// loaded machine; a call unanswered for this long means the engine hangs.
var removeCallBound = 2 * time.Minute

// errStaleNetwork marks a network the engine refuses to remove although
// nothing is attached to it (a leaked endpoint count, see removeRun).
var errStaleNetwork = errors.New("the Docker engine counts an endpoint on it that no longer exists (an engine defect); only restarting the engine releases it; it holds no container and does not affect other runs")

// removeNetwork removes a run's network once its containers are gone. An
// endpoint still listed then has no container (its container was removed
// while the engine was attaching it): it is disconnected by force, which
// the engine accepts for an endpoint whose container no longer exists.
func removeNetwork(ctx context.Context, cli *client.Client, id, name, runID string) error {
	_, err := cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	if err == nil || isNotFound(err) {
		return nil
	}
	if !strings.Contains(err.Error(), "active endpoints") {
		return fmt.Errorf("removing network %s: %w", name, err)
	}
	in, ierr := cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if ierr != nil {
		return fmt.Errorf("removing network %s: %w", name, errors.Join(err, ierr))
	}
	if len(in.Network.Containers) == 0 {
		return fmt.Errorf("network %s of run %s: %w", name, runID, errStaleNetwork)
	}
	for key, ep := range in.Network.Containers {
		// The engine finds a container-less endpoint by its name.
		target := ep.Name
		if target == "" {
			target = key
		}
		if _, derr := cli.NetworkDisconnect(ctx, id, client.NetworkDisconnectOptions{Container: target, Force: true}); derr != nil && !isNotFound(derr) {
			return fmt.Errorf("removing network %s: disconnecting stale endpoint %s: %w", name, target, derr)
		}
	}
	if _, err := cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
		if strings.Contains(err.Error(), "active endpoints") {
			return fmt.Errorf("network %s of run %s: %w", name, runID, errStaleNetwork)
		}
		return fmt.Errorf("removing network %s: %w", name, err)
	}
	return nil
}

// reportedStale remembers stale networks already reported by this process.
var reportedStale sync.Map

// quietStale drops from a sweep's error the stale networks this process
// has already reported: each is said once, not on every run.
func quietStale(err error) error {
	if err == nil {
		return nil
	}
	var keep []error
	for _, e := range leafErrors(err) {
		if errors.Is(e, errStaleNetwork) {
			if _, seen := reportedStale.LoadOrStore(e.Error(), true); seen {
				continue
			}
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// Leftovers lists the containers and networks of a run that still exist
// on the engine (none once its Runtime is closed).
func Leftovers(ctx context.Context, runID string) ([]string, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	return runLeftovers(ctx, cli, runID)
}

func runLeftovers(ctx context.Context, cli *client.Client, runID string) ([]string, error) {
	f := client.Filters{}.Add("label", labelRun+"="+runID)
	var out []string
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Items {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, n := range ns.Items {
		out = append(out, "network "+n.Name)
	}
	return out, nil
}
