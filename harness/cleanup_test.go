package harness

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// engineLeakEnv turns on TestEngineEndpointCountLeak: its rounds take
// minutes and may leave a network that only an engine restart removes, so
// they run only when asked, and on a private engine the test starts (and
// removes with everything on it).
const engineLeakEnv = "MESHTLS_ENGINE_LEAK"

// Many containers of one network removed at once can leave the engine
// counting an endpoint that no longer exists; removeRun, which removes
// attached containers one at a time, leaves every network removable.
// Rounds of 40 Envoy containers: first as removeRun does, then all at once
// (the old way), which is reported, not asserted: it is the engine's race.
func TestEngineEndpointCountLeak(t *testing.T) {
	liveOnly(t)
	if os.Getenv(engineLeakEnv) == "" {
		t.Skipf("set %s=1 to replay the engine's endpoint-count race on a private engine (minutes)", engineLeakEnv)
	}
	ctx := testCtx(t, 20*time.Minute)
	cli := startPrivateEngine(t).client(t, ctx)
	im, err := ensureImages(ctx, cli, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	const rounds, per = 6, 40
	round := func(i int, concurrent bool) error {
		runID := fmt.Sprintf("%08x", 0xe0000000+i)
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 29, byte(100 + i), 0}), 24)
		nw, err := cli.NetworkCreate(ctx, "meshtls-leak-"+runID, client.NetworkCreateOptions{
			Internal: true, Labels: runLabels(runID),
			IPAM: &dnetwork.IPAM{Driver: "default", Config: []dnetwork.IPAMConfig{{Subnet: prefix, Gateway: prefix.Addr().Next()}}},
		})
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for j := range per {
			c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
				Config: &container.Config{Image: im.Envoy, Labels: runLabels(runID),
					Cmd: []string{"--config-yaml", "{}", "--concurrency", "1"}},
				HostConfig: &container.HostConfig{},
				NetworkingConfig: &dnetwork.NetworkingConfig{EndpointsConfig: map[string]*dnetwork.EndpointSettings{
					nw.ID: {IPAMConfig: &dnetwork.EndpointIPAMConfig{IPv4Address: netip.AddrFrom4([4]byte{172, 29, byte(100 + i), byte(10 + j)})}}}},
			})
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
			}()
		}
		wg.Wait()
		if !concurrent {
			return removeRun(ctx, cli, runID)
		}
		f := client.Filters{}.Add("label", labelRun+"="+runID)
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return err
		}
		for _, c := range cs.Items {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}()
		}
		wg.Wait()
		return removeNetwork(ctx, cli, nw.ID, nw.ID[:12], runID)
	}
	for i := range rounds {
		if err := round(i, false); err != nil {
			t.Errorf("round %d, attached containers removed one at a time: %v", i, err)
		}
	}
	leaked := 0
	for i := range rounds {
		if err := round(rounds+i, true); err != nil {
			if !strings.Contains(err.Error(), errStaleNetwork.Error()) {
				t.Errorf("round %d, all at once: %v", i, err)
			}
			leaked++
		}
	}
	t.Logf("all containers removed at once: %d of %d rounds left a network the engine will not remove", leaked, rounds)
}

// A stale network (the engine's leaked endpoint count) is reported once
// per process, not by every later sweep: one run's leftover does not fail
// or clutter the runs and tests after it. Other errors are always kept.
func TestStaleNetworkReportedOnce(t *testing.T) {
	stale := fmt.Errorf("network meshtls-%s of run %s: %w", t.Name(), "0badc0de", errStaleNetwork)
	other := errors.New("removing container 0123456789ab: permission denied")
	first := quietStale(errors.Join(stale, other))
	if first == nil || !errors.Is(first, errStaleNetwork) || !strings.Contains(first.Error(), "permission denied") {
		t.Fatalf("first sweep: %v; want both errors", first)
	}
	again := quietStale(errors.Join(stale, other))
	if again == nil || errors.Is(again, errStaleNetwork) || !strings.Contains(again.Error(), "permission denied") {
		t.Fatalf("second sweep: %v; want only the other error", again)
	}
	if err := quietStale(stale); err != nil {
		t.Fatalf("third sweep with only the stale network: %v; want nil", err)
	}
}
