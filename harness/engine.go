package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// explainEngineLoss adds what happened when the Docker engine went away in
// the middle of a run (stopped, crashed, restarted): the client's own
// error is a bare "error during connect ... EOF". An engine that restarts
// stops every container of the run; what is left is removed by the next
// run's sweep, as for a killed run.
func explainEngineLoss(cli *client.Client, err error) error {
	if cli == nil || err == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, perr := cli.Ping(ctx, client.PingOptions{})
	switch {
	case perr != nil:
		return fmt.Errorf("%w\nthe Docker engine stopped answering during the run (%v): start it again; the next run removes what this one left", err, perr)
	case strings.Contains(err.Error(), "error during connect"), strings.Contains(err.Error(), "connection reset"):
		return fmt.Errorf("%w\nthe Docker engine closed the connection during the run (did it restart?); if it restarted it stopped this run's containers, and the next run removes them", err)
	}
	return err
}

// lostState is how a run learns, after Start, that its containers are
// gone: the engine's event stream for the run ends (the engine stopped or
// restarted: without live-restore a restart stops every container) or a
// container of the run dies without the harness asking. From then on every
// wait of Apply, Repush and Run ends at once with that reason, instead of
// waiting for ACKs and answers that can never come.
type lostState struct {
	ctx    context.Context // cancelled, with the reason, when the run is lost
	lose   context.CancelCauseFunc
	stop   context.CancelFunc // ends the watch (Close)
	mu     sync.Mutex
	expect map[string]int // deaths the harness itself causes, by container id
	// answers reports whether the engine accepts a new connection (nil:
	// not asked). A stopping engine stops the run's containers (their die
	// events still arrive on the open event stream) after it has closed
	// its API socket: that is how a restart is told from one container's
	// death.
	answers func(context.Context) error
}

func newLostState() *lostState {
	l := &lostState{expect: map[string]int{}}
	l.ctx, l.lose = context.WithCancelCause(context.Background())
	return l
}

// watchEngine starts following the run's container deaths.
func (r *Runtime) watchEngine() {
	ctx, cancel := context.WithCancel(context.Background())
	r.lost.stop = cancel
	r.lost.answers = func(ctx context.Context) error { return engineAnswers(ctx, r.cli) }
	f := client.Filters{}.Add("label", labelRun+"="+r.RunID).Add("type", "container").Add("event", "die")
	ev := r.cli.Events(ctx, client.EventsListOptions{Filters: f})
	go r.lost.watch(ctx, ev.Messages, ev.Err)
}

func (l *lostState) watch(ctx context.Context, msgs <-chan events.Message, errs <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			l.mu.Lock()
			expected := l.expect[m.Actor.ID] > 0
			if expected {
				l.expect[m.Actor.ID]--
			}
			l.mu.Unlock()
			if expected {
				continue
			}
			a := m.Actor.Attributes
			if err := l.engineGone(ctx); err != nil {
				l.lose(fmt.Errorf("the Docker engine is stopping or restarting (it stopped container %s of pod %s and takes no new connection: %v), which stops every container of the run",
					a["name"], a[labelPod], err))
				return
			}
			l.lose(fmt.Errorf("container %s of pod %s stopped during the run (exit code %s) without meshtls stopping it: killed, out of memory, or stopped by hand (docker stop, docker kill)",
				a["name"], a[labelPod], a["exitCode"]))
			return
		case err, ok := <-errs:
			if ctx.Err() != nil {
				return // Close ended the watch
			}
			if !ok || err == nil {
				err = io.EOF
			}
			l.lose(fmt.Errorf("the Docker engine ended the run's event stream (%v): it stopped or restarted, which stops every container of the run", err))
			return
		}
	}
}

// engineGone is why the engine takes no new connection, nil when it does
// (or is not asked).
func (l *lostState) engineGone(ctx context.Context) error {
	if l.answers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.answers(ctx)
}

// engineAnswers pings the engine on a connection of its own: the client's
// pooled ones may still reach an engine that has closed its API socket
// while it shuts down.
func engineAnswers(ctx context.Context, cli *client.Client) error {
	conn, err := cli.Dialer()(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// expectStop announces that the harness is about to stop container id
// once (its one die event is not a loss).
func (l *lostState) expectStop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expect[id]++
}

// err is why the run is lost, nil while it is not.
func (l *lostState) err() error {
	if l == nil || l.ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("the run's mesh is gone: %w; start the run again: the next run removes what this one left", context.Cause(l.ctx))
}

// bound returns ctx, also ended when the run is lost.
func (l *lostState) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if l == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return ctx, func() { stop(); cancel(nil) }
}

// explainLost replaces err with why the run is lost, when it is.
func (l *lostState) explainLost(err error) error {
	if err == nil {
		return nil
	}
	if lerr := l.err(); lerr != nil {
		return lerr
	}
	return err
}
