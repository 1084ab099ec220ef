package harness

// Fault injection for reliability tests. Each fault returns only when the
// harness has positive evidence that every affected proxy runs the config
// the control plane holds for it, so a proxy left on stale config fails
// loudly instead of passing a later check by luck.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/xds"
)

// RestartProxy kills a pod's Envoy (SIGKILL, as a crash) and starts the same
// container again, as kubelet restarts a crashed istio-proxy container. It
// returns when the new Envoy process is LIVE, every dynamic listener and
// cluster it holds carries the version the xDS server has for the pod, and
// no listener is warming.
//
// The xDS server's ACK record alone is no evidence here: it is kept per node,
// not per stream, so the old process's ACK of the current version would
// satisfy Wait before the new process has even connected. A fresh process
// has no config but what it fetched, so Envoy's own config dump is.
func (r *Runtime) RestartProxy(ctx context.Context, ref string) error {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	p, ok := r.Pod(ref)
	if !ok {
		return fmt.Errorf("restart proxy: no workload %q in the running mesh", ref)
	}
	if p.envoy == nil || p.Admin == nil {
		return fmt.Errorf("restart proxy: %s has no proxy (sidecar: false or external)", p.W.ID())
	}
	// Same content as before: Set returns the current version and sends nothing.
	versions, err := r.push(ctx, []*mesh.Workload{p.W})
	if err != nil {
		return err
	}
	version := versions[p.W.ID()]
	id := p.envoy.GetContainerID()
	r.lost.expectStop(id)
	if _, err := r.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return fmt.Errorf("restart proxy %s: kill: %w", p.W.ID(), err)
	}
	wr := r.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-wr.Result:
	case err := <-wr.Error:
		return fmt.Errorf("restart proxy %s: waiting for the killed Envoy to exit: %w", p.W.ID(), err)
	}
	// The old log stream ended with the old process; follow the new one
	// from now on so access-log evidence keeps arriving, without replaying
	// the old process's lines.
	since := time.Now()
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("restart proxy %s: start: %w", p.W.ID(), err)
	}
	if err := r.followSince(id, since, p.Logs, p.EnvLog); err != nil {
		return fmt.Errorf("restart proxy %s: following logs: %w", p.W.ID(), err)
	}
	if err := r.xds.Wait(ctx, p.W.ID(), version); err != nil { // a NACK on the new stream fails here
		return fmt.Errorf("restart proxy %s: %w%s", p.W.ID(), err, p.envoyTail())
	}
	if err := p.Admin.Ready(ctx); err != nil {
		return fmt.Errorf("restart proxy %s: %w%s", p.W.ID(), err, p.envoyTail())
	}
	// Versions are per type (xds.Server.Set): an Envoy that got the
	// snapshot anew runs each type at that type's version.
	if err := waitConfigVersion(ctx, p, r.xds.TypeVersions(p.W.ID(), version)); err != nil {
		return fmt.Errorf("restart proxy %s: %w%s", p.W.ID(), err, p.envoyTail())
	}
	if err := p.Admin.WaitNoWarming(ctx); err != nil {
		return fmt.Errorf("restart proxy %s: %w%s", p.W.ID(), err, p.envoyTail())
	}
	return nil
}

// RestartControlPlane stops the xDS server, as when istiod restarts, and
// starts a fresh one on the same socket serving m (nil: the running config;
// otherwise the same workloads with new Istio config). It returns when every
// proxy has reconnected and ACKed the new server's version: the new server
// has no ACK history, so Wait can only succeed on a proxy's ACK over a new
// stream. A proxy that does not reconnect (hung, partitioned) fails here
// with "never connected" rather than running stale config unnoticed.
func (r *Runtime) RestartControlPlane(ctx context.Context, m *mesh.Mesh) error {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	if m != nil {
		if err := sameWorkloads(r.mesh, m); err != nil {
			return err
		}
		m.Workloads = r.mesh.Workloads
	}
	old := r.xds
	old.Stop()
	if err := r.startXDS(xds.AfterVersionsOf(old)); err != nil {
		return fmt.Errorf("restarting the xDS server: %w", err)
	}
	if m != nil {
		if err := r.setMesh(m); err != nil {
			return err
		}
	}
	r.configs = nil // the new server has no config yet
	return r.pushAll(ctx)
}

// followSince is follow for a restarted container: only lines written after t.
func (r *Runtime) followSince(id string, t time.Time, out, errb *LogBuffer) error {
	rc, err := r.cli.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: true,
		Since: fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()),
	})
	if err != nil {
		return err
	}
	go func() {
		defer rc.Close()
		_, _ = stdcopy.StdCopy(writerFunc(out.write), writerFunc(errb.write), rc)
	}()
	return nil
}

// waitConfigVersion waits until Envoy's dynamic listeners all carry the LDS
// version of want and its clusters the CDS version (and there is at least
// one of each); want is xds.Server.TypeVersions.
func waitConfigVersion(ctx context.Context, p *Pod, want map[string]string) error {
	var last string
	for {
		ok, desc, err := configAtVersion(ctx, p, want)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			desc = err.Error()
		}
		if ctx.Err() == nil {
			last = desc
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("envoy of %s does not run LDS version %s and CDS version %s (%s): %w", p.W.ID(), want["LDS"], want["CDS"], last, ctx.Err())
		case <-time.After(20 * time.Millisecond): // the admin API has no watch
		}
	}
}

func configAtVersion(ctx context.Context, p *Pod, want map[string]string) (bool, string, error) {
	var seen []string
	for _, res := range []string{"dynamic_listeners", "dynamic_active_clusters"} {
		version := want["LDS"]
		if res == "dynamic_active_clusters" {
			version = want["CDS"]
		}
		b, err := p.Admin.ConfigDump(ctx, "resource="+res)
		if err != nil {
			return false, "", err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return false, "", fmt.Errorf("config_dump %s: %w", res, err)
		}
		vs := versionInfos(doc, nil)
		if len(vs) == 0 {
			return false, res + ": none yet", nil
		}
		for _, v := range vs {
			if v != version {
				seen = append(seen, res+"@"+v)
			}
		}
	}
	if len(seen) > 0 {
		slices.Sort(seen)
		return false, "found " + strings.Join(slices.Compact(seen), ", "), nil
	}
	return true, "", nil
}

// versionInfos collects every "version_info" string in a config dump.
func versionInfos(v any, out []string) []string {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "version_info" {
				out = append(out, s)
				continue
			}
			out = versionInfos(x, out)
		}
	case []any:
		for _, x := range t {
			out = versionInfos(x, out)
		}
	}
	return out
}
