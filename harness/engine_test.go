package harness

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/xds"
)

// An engine that goes away after Start (its event stream ends) ends a push
// that waits for proxies at once, saying what happened and what to do,
// instead of waiting for ACKs that can never come.
func TestLostEngineEndsAPushAtOnce(t *testing.T) {
	set, err := certs.NewSet()
	if err != nil {
		t.Fatal(err)
	}
	m := pushMesh(t, 2, pa("default", "istio-system", "", "STRICT"))
	r := &Runtime{xds: xds.NewServer(), certs: certs.NewStore(set), pods: map[string]*Pod{}, lost: newLostState()}
	t.Cleanup(r.xds.Stop)
	if err := r.setMesh(m); err != nil {
		t.Fatal(err)
	}
	r.addrs = m.AddressPlan(netip.MustParsePrefix("172.30.6.0/24"))
	for _, w := range m.Workloads {
		r.pods[w.ID()] = &Pod{W: w}
	}
	msgs, errs := make(chan events.Message), make(chan error, 1)
	go r.lost.watch(t.Context(), msgs, errs)

	done := make(chan error, 1)
	go func() { done <- r.pushAll(context.Background()) }() // no proxy will ever ACK
	errs <- io.EOF                                          // the engine went away
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "engine ended the run's event stream") || !strings.Contains(err.Error(), "start the run again") {
			t.Fatalf("push after the engine went away: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the push still waits 30s after the engine went away")
	}
	// Later calls fail at once with the same reason.
	if err := r.pushAll(context.Background()); err == nil || !strings.Contains(err.Error(), "mesh is gone") {
		t.Fatalf("a later push: %v", err)
	}
}

// A container that dies unasked loses the run; one the harness stops
// itself (RestartProxy) does not.
func TestContainerDeathLosesTheRun(t *testing.T) {
	l := newLostState()
	msgs, errs := make(chan events.Message), make(chan error)
	go l.watch(t.Context(), msgs, errs)
	l.expectStop("envoy1")
	msgs <- events.Message{Action: "die", Actor: events.Actor{ID: "envoy1"}}
	msgs <- events.Message{Action: "die", Actor: events.Actor{ID: "agent1", Attributes: map[string]string{"name": "meshtls-x-default-a-agent", labelPod: "default/a", "exitCode": "137"}}}
	select {
	case <-l.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not lost")
	}
	err := l.err()
	if err == nil || !strings.Contains(err.Error(), "default/a") || !strings.Contains(err.Error(), "137") || strings.Contains(err.Error(), "envoy1") {
		t.Fatalf("lost because: %v", err)
	}
	if got := l.explainLost(errors.New("context canceled")); got.Error() != err.Error() {
		t.Fatalf("explainLost = %v", got)
	}
}

// A container that dies while the engine takes no new connection (a
// stopping engine closes its API socket, then stops every container) is
// reported as the engine stopping or restarting, not as that container's
// own death.
func TestStoppingEngineIsNamed(t *testing.T) {
	l := newLostState()
	l.answers = func(context.Context) error {
		return errors.New("dial unix /var/run/docker.sock: connect: no such file or directory")
	}
	msgs, errs := make(chan events.Message), make(chan error)
	go l.watch(t.Context(), msgs, errs)
	msgs <- events.Message{Action: "die", Actor: events.Actor{ID: "agent1", Attributes: map[string]string{"name": "meshtls-x-default-a-agent", labelPod: "default/a", "exitCode": "0"}}}
	<-l.ctx.Done()
	err := l.err()
	for _, want := range []string{"Docker engine is stopping or restarting", "default/a", "no such file", "start the run again"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("lost because %v; want it to say %q", err, want)
		}
	}
}

// Live: a pod's container killed behind the harness's back (as an engine
// stopping kills them all) makes the next check and push fail at once,
// naming the pod, and Close still removes everything.
func TestKilledContainerFailsTheNextCheck(t *testing.T) {
	liveOnly(t)
	cli := testDocker(t)
	rt := startLive(t, parseBundle(t, reliabilityTwoPods))
	runCheck(t, rt, checkAB)
	p, _ := rt.Pod("b")
	if _, err := cli.ContainerKill(testCtx(t, 10*time.Second), p.agent.GetContainerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rt.lost.ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("30s after b's agent was killed the run does not know")
	}
	// No deadline on these calls: they must end by themselves.
	_, err := rt.Run(context.Background(), t.Name(), checkAB)
	if err == nil || !strings.Contains(err.Error(), "default/b") || !strings.Contains(err.Error(), "start the run again") {
		t.Fatalf("check after the kill: %v", err)
	}
	if err := rt.Apply(context.Background(), parseBundle(t, reliabilityTwoPods+pa("default", "istio-system", "", "STRICT"))); err == nil || !strings.Contains(err.Error(), "mesh is gone") {
		t.Fatalf("push after the kill: %v", err)
	}
}
