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
// Docker 20.10's libnetwork keeps a per-network endpoint count next to the
// endpoints and refuses to remove a network whose count is not zero. The
// count is updated by read-modify-write on an object that concurrent
// endpoint creations and deletions of one network share, so two at once
// can lose a decrement (or apply an increment twice): the count stays
// above zero with no endpoint left, `docker network rm` says "has active
// endpoints" for ever, and only an engine restart recounts
// (docs/scaling.md, "The Docker engine's endpoint count"). So no endpoint
// of the run's network is deleted while another is created or deleted:
//   - every attached container (pod agents, plain workloads) is inspected
//     first: the engine holds a container's lock for the whole of its
//     start, network setup included, and an inspect waits for that lock,
//     so a start still in flight (a killed run's, or one whose call Start
//     gave up on) has created its endpoint before any removal begins;
//   - then they are removed one at a time.
//
// Containers that share a pod's network namespace (Envoy) own no endpoint
// and go concurrently.
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
		settled(ctx, cli, attached, bounded)
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

// settled returns once the engine has finished any start of the given
// containers that it had begun: an inspect waits for the container's lock,
// which a start holds until its endpoint exists (daemon/start.go
// containerStart, daemon/inspect.go ContainerInspectCurrent in Docker
// 20.10). An error (a container already gone) settles that container too.
func settled(ctx context.Context, cli *client.Client, ids []string, bounded func(func(context.Context) error) error) {
	var g errgroup.Group
	g.SetLimit(8)
	for _, id := range ids {
		g.Go(func() error {
			_ = bounded(func(ctx context.Context) error {
				_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
				return err
			})
			return nil
		})
	}
	_ = g.Wait()
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
