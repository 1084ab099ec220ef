package harness

import (
	"bufio"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/moby/moby/client"
)

// Two runs on one engine at once (two `meshtls run`, parallel test
// packages) do not interfere: each has its own names, network and address
// plan; one's checks pass while the other starts, runs and dies; and the
// sweep that follows a death removes the dead run only.
func TestConcurrentRunsDoNotInterfere(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	ctx := testCtx(t, 6*time.Minute)
	// The other run: a separate process (its own pid label, its own sweep).
	cmd, out := startChildRun(t, ctx)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	other := make(chan string, 1)
	go func() {
		defer close(other)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MESH UP "); ok {
				for _, f := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(f, "run="); ok {
						other <- v
					}
				}
				return
			}
		}
	}()
	// Ours starts while the other process starts too.
	rt := startLive(t, parseBundle(t, reliabilityTwoPods))
	otherRun := <-other
	if otherRun == "" {
		t.Fatal("the other process never reported its mesh up")
	}
	if otherRun == rt.RunID {
		t.Fatalf("both runs got id %s", otherRun)
	}
	runCheck(t, rt, checkAB)

	// Separate networks with disjoint address plans, and container names
	// that carry the run id.
	nets := map[string]netip.Prefix{}
	for _, run := range []string{rt.RunID, otherRun} {
		f := client.Filters{}.Add("label", labelRun+"="+run)
		ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(ns.Items) != 1 {
			t.Fatalf("run %s has %d networks, want 1", run, len(ns.Items))
		}
		in, err := cli.NetworkInspect(ctx, ns.Items[0].ID, client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Network.IPAM.Config) != 1 {
			t.Fatalf("run %s network has %d subnets", run, len(in.Network.IPAM.Config))
		}
		nets[run] = in.Network.IPAM.Config[0].Subnet
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Items {
			for _, n := range c.Names {
				if !strings.Contains(n, "meshtls-"+run+"-") {
					t.Errorf("container %s of run %s does not carry its run id", n, run)
				}
			}
		}
	}
	if a, b := nets[rt.RunID], nets[otherRun]; a.Overlaps(b) {
		t.Errorf("address plans overlap: %s and %s", a, b)
	}

	// The other process dies without cleanup; our sweep removes its run,
	// not ours, and our mesh keeps working.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := sweepDeadRuns(ctx, cli, t.Logf); err != nil {
		t.Logf("sweepDeadRuns (other dead runs on this engine may be reported): %v", err)
	}
	if got := leftovers(t, cli, otherRun); len(got) > 0 {
		t.Errorf("the dead run %s left %s", otherRun, strings.Join(got, "; "))
	}
	if got := leftovers(t, cli, rt.RunID); len(got) == 0 {
		t.Fatalf("the sweep removed the live run %s", rt.RunID)
	}
	runCheck(t, rt, checkAB)
}

// The Runtime's concurrency contract (its godoc), live and under -race
// (make race runs this test): checks from several goroutines while config
// is applied back and forth and a certificate is rotated: no data race,
// every check gets its trace, and once the pushes end a check passes.
func TestRuntimeConcurrentUse(t *testing.T) {
	m, err := mesh.Parse("concurrent.yaml", []byte(callBundle))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(t, m)
	// https://istio.io/latest/docs/reference/config/security/peer_authentication/ (STRICT)
	strict, err := m.WithConfig("strict.yaml", []byte(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`))
	if err != nil {
		t.Fatal(err)
	}
	none, err := m.WithConfig("none.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 5*time.Minute)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			for j := range 4 {
				c, err := rt.CallCheck(fmt.Sprintf("a-to-b-%d-%d", i, j), "a", "http://b.default.svc.cluster.local:8080/",
					ExpectResult(outcome.OK), ExpectWire(outcome.MTLS))
				if err != nil {
					errs <- err
					return
				}
				res, err := rt.Run(ctx, "concurrent", c)
				if err != nil {
					errs <- err
					return
				}
				// While a push replaces listeners and clusters Envoy may
				// answer 503: outcomes are checked once the pushes end.
				if res.Result == "" || len(res.Wire) == 0 {
					errs <- fmt.Errorf("%s: no result or wire in the trace", c.Name)
				}
				if _, ok := rt.Pod("b"); !ok {
					errs <- fmt.Errorf("Pod(b) not found during pushes")
				}
			}
		})
	}
	wg.Go(func() {
		for _, cfg := range []*mesh.Mesh{strict, none, strict} {
			if err := rt.Apply(ctx, cfg); err != nil {
				errs <- fmt.Errorf("apply: %w", err)
			}
		}
	})
	wg.Go(func() {
		if _, err := rt.RotateWorkload(ctx, "default", "b"); err != nil {
			errs <- fmt.Errorf("rotate: %w", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rt.Call(t, "a", "http://b.default.svc.cluster.local:8080/", ExpectResult(outcome.OK), ExpectWire(outcome.MTLS))
}
