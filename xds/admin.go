package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Admin is a client of one Envoy's admin API, over its Unix socket (how the
// test process reaches every pod's Envoy) or TCP.
type Admin struct {
	target string // for messages
	base   string
	client *http.Client
}

// pollInterval paces Ready, WaitNoWarming and WaitNoDraining; the admin API
// has no watch.
const pollInterval = 20 * time.Millisecond

// NewAdmin returns a client for the admin API on the Unix socket path.
func NewAdmin(socketPath string) *Admin {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}
	return &Admin{target: socketPath, base: "http://envoy-admin", client: &http.Client{Transport: tr}}
}

// Get returns the body of the admin path (with query), failing on non-2xx.
func (a *Admin) Get(ctx context.Context, path string) ([]byte, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("envoy admin %s %s: %w", a.target, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("envoy admin %s %s: read: %w", a.target, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return body, fmt.Errorf("envoy admin %s %s: %s: %s", a.target, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// Ready waits until /ready says LIVE: Envoy finished initialising (first
// clusters and listeners fetched and warmed). It fails at ctx's deadline with
// the last state seen.
func (a *Admin) Ready(ctx context.Context) error {
	var last string
	return a.poll(ctx, func() (bool, error) {
		body, err := a.Get(ctx, "/ready")
		state := strings.TrimSpace(string(body))
		switch {
		case ctx.Err() != nil:
			// Cut short by the deadline: keep the last real answer.
		case err == nil && state == "LIVE":
			return true, nil
		case state != "":
			last = state
		case err != nil:
			last = err.Error()
		}
		return false, nil
	}, func() string { return fmt.Sprintf("envoy %s not ready (last: %s)", a.target, last) })
}

// ConfigDump returns /config_dump as JSON; query ("resource=dynamic_listeners",
// "include_eds") may be empty.
func (a *Admin) ConfigDump(ctx context.Context, query string) ([]byte, error) {
	p := "/config_dump"
	if query != "" {
		p += "?" + query
	}
	return a.Get(ctx, p)
}

// Stats returns counters and gauges whose name matches the regular
// expression filter (all if empty). Histograms are left out.
func (a *Admin) Stats(ctx context.Context, filter string) (map[string]uint64, error) {
	p := "/stats?format=json"
	if filter != "" {
		p += "&filter=" + url.QueryEscape(filter)
	}
	body, err := a.Get(ctx, p)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Stats []struct {
			Name  string  `json:"name"`
			Value *uint64 `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("envoy admin %s stats: %w", a.target, err)
	}
	out := map[string]uint64{}
	for _, s := range doc.Stats {
		if s.Value != nil {
			out[s.Name] = *s.Value
		}
	}
	return out, nil
}

// ListenerStates lists dynamic listeners by state: an ACKed listener may
// still be warming (waiting for a secret, route or endpoints) and then does
// not serve yet; error_state holds Envoy's reason for rejecting it.
type ListenerStates struct {
	Active  []string
	Warming []string
	Errors  map[string]string
}

// Listeners reads the dynamic listeners' states from /config_dump.
func (a *Admin) Listeners(ctx context.Context) (*ListenerStates, error) {
	body, err := a.ConfigDump(ctx, "resource=dynamic_listeners")
	if err != nil {
		return nil, err
	}
	type dynamicListener struct {
		Name         string          `json:"name"`
		ActiveState  json.RawMessage `json:"active_state"`
		WarmingState json.RawMessage `json:"warming_state"`
		ErrorState   *struct {
			Details string `json:"details"`
		} `json:"error_state"`
	}
	var doc struct {
		// With ?resource= each config is one DynamicListener; without, a
		// ListenersConfigDump holding dynamic_listeners. Accept both.
		Configs []struct {
			dynamicListener
			DynamicListeners []dynamicListener `json:"dynamic_listeners"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("envoy admin %s config_dump: %w", a.target, err)
	}
	st := &ListenerStates{Errors: map[string]string{}}
	add := func(l dynamicListener) {
		if l.Name == "" {
			return
		}
		if len(l.ActiveState) > 0 {
			st.Active = append(st.Active, l.Name)
		}
		if len(l.WarmingState) > 0 {
			st.Warming = append(st.Warming, l.Name)
		}
		if l.ErrorState != nil {
			st.Errors[l.Name] = l.ErrorState.Details
		}
	}
	for _, c := range doc.Configs {
		add(c.dynamicListener)
		for _, l := range c.DynamicListeners {
			add(l)
		}
	}
	sort.Strings(st.Active)
	sort.Strings(st.Warming)
	return st, nil
}

// WaitNoWarming waits until no dynamic listener is warming, so every ACKed
// listener is really serving. It fails at ctx's deadline naming the listeners
// still warming.
func (a *Admin) WaitNoWarming(ctx context.Context) error {
	var last *ListenerStates
	var lastErr error
	return a.poll(ctx, func() (bool, error) {
		st, err := a.Listeners(ctx)
		if err != nil {
			if ctx.Err() == nil { // keep the last real answer at the deadline
				lastErr = err
			}
			return false, nil
		}
		last, lastErr = st, nil
		return len(st.Warming) == 0, nil
	}, func() string {
		if last == nil {
			return fmt.Sprintf("envoy %s: could not read listeners: %v", a.target, lastErr)
		}
		return fmt.Sprintf("envoy %s: listeners still warming: %s (waiting for a secret, route or endpoints the proxy was not sent?)",
			a.target, strings.Join(last.Warming, ", "))
	})
}

// WaitNoDraining waits until no listener and no filter chain is draining
// (Envoy's gauges listener_manager.total_listeners_draining and
// total_filter_chains_draining): the connections a config change ended are
// closed, and every later connection meets only the new config. It fails
// at ctx's deadline with the counts still draining.
func (a *Admin) WaitNoDraining(ctx context.Context) error {
	var last map[string]uint64
	var lastErr error
	return a.poll(ctx, func() (bool, error) {
		st, err := a.Stats(ctx, `^listener_manager\.total_(listeners|filter_chains)_draining$`)
		if err != nil {
			if ctx.Err() == nil {
				lastErr = err
			}
			return false, nil
		}
		last, lastErr = st, nil
		return st["listener_manager.total_listeners_draining"] == 0 && st["listener_manager.total_filter_chains_draining"] == 0, nil
	}, func() string {
		if last == nil {
			return fmt.Sprintf("envoy %s: could not read the draining gauges: %v", a.target, lastErr)
		}
		return fmt.Sprintf("envoy %s: still draining: %d listeners, %d filter chains", a.target,
			last["listener_manager.total_listeners_draining"], last["listener_manager.total_filter_chains_draining"])
	})
}

// poll calls check until it reports done, or fails at ctx's deadline with
// describe().
func (a *Admin) poll(ctx context.Context, check func() (bool, error), describe func() string) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", describe(), ctx.Err())
		case <-tick.C:
		}
	}
}
