package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// New starts a mesh for a test and removes it when the test ends, like
// httptest.NewServer. It fails the test with the fix when Docker or Envoy is
// missing; with -short it skips instead (a quick local loop).
//
// MESHTLS_KEEP=1 leaves the mesh running when the test failed and prints how
// to reach each proxy's admin page; the next run removes it.
func New(t testing.TB, m *mesh.Mesh, opt ...Option) *Runtime {
	t.Helper()
	if testing.Short() {
		t.Skip("live test: needs Docker and Envoy (run without -short)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rt, err := Start(ctx, m, append([]Option{WithLogf(t.Logf)}, opt...)...)
	if err != nil {
		t.Fatalf("starting the mesh: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("MESHTLS_KEEP") != "" {
			t.Log(rt.KeepMessage())
			return
		}
		if err := rt.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rt
}

// applyTimeout bounds ApplyConfig: the push and every proxy's ACK.
const applyTimeout = 2 * time.Minute

// ApplyConfig pushes Istio config to the running mesh and returns when
// every proxy has ACKed it, failing t otherwise. yaml holds
// PeerAuthentications, DestinationRules, Gateways, VirtualServices,
// ServiceEntries, Services and TLS Secrets (mesh.ConfigKinds); it is added
// to the bundle the mesh runs (its workloads, Services and config) and
// validated as a bundle is, with the same messages. A Workload, a
// Kubernetes workload, a Namespace or a Check fails t with the fix. Each
// ApplyConfig replaces the config of the one before (mesh.Mesh.WithConfig).
func (r *Runtime) ApplyConfig(t testing.TB, yaml string) {
	t.Helper()
	cur, _ := r.current()
	m, err := cur.WithConfig(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), applyTimeout)
	defer cancel()
	if err := r.Apply(ctx, m); err != nil {
		t.Fatalf("pushing the config: %v", err)
	}
}

// KeepMessage says how to reach a mesh left running, and how to remove it.
func (r *Runtime) KeepMessage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "MESHTLS_KEEP: mesh %s left running (the control plane stopped with this process; proxies keep their last config).\n", r.RunID)
	var ids []string
	for id, p := range r.pods {
		if p.Admin != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "  %s admin: curl --unix-socket %s http://envoy/config_dump\n", id, filepath.Join(r.pods[id].Dir, "admin.sock"))
	}
	fmt.Fprintf(&b, "  containers: docker ps --filter label=%s=%s\n", labelRun, r.RunID)
	fmt.Fprintf(&b, "  remove: docker rm -f $(docker ps -aq --filter label=%s=%s) && docker network prune -f --filter label=%s=%s (or just run meshtls again)", labelRun, r.RunID, labelRun, r.RunID)
	return b.String()
}

// Check runs c and fails t when its expectation does not hold, printing
// expected and observed side by side with the trace, and saving every
// proxy's config dump, ssl stats and access log and every pod's capture
// under the test's artifact folder.
func (r *Runtime) Check(t testing.TB, scenario string, c *mesh.Check) *trace.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := r.Run(ctx, scenario, c)
	if err != nil {
		t.Fatalf("check %s: %v", c.Name, err)
	}
	if res.Verdict != outcome.Fail {
		// MESHTLS_EXPLAIN=1 logs every trace, not only failures.
		if os.Getenv("MESHTLS_EXPLAIN") != "" {
			t.Log(res.Explain())
		}
		return res
	}
	msg := res.Explain()
	if tt, ok := t.(interface{ ArtifactDir() string }); ok {
		if dir, err := r.SaveArtifacts(ctx, tt.ArtifactDir()); err == nil {
			res.Artifacts = dir
			msg += "\nevidence saved in " + dir + " (go test -artifacts keeps it)"
		}
	}
	t.Error(msg)
	return res
}
