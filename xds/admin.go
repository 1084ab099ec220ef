package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
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
// expression filter (all if empty). Histograms and text readouts are left
// out.
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
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("envoy admin %s stats: %w", a.target, err)
	}
	out := map[string]uint64{}
	for _, s := range doc.Stats {
		if v, ok := s.Value.(float64); ok { // a text readout's value is a string
			out[s.Name] = uint64(v)
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

// Diagnose says what Envoy runs and what it waits for, for an error when a
// push was not ACKed: per xDS type the version Envoy applied, the clusters,
// listeners and secrets still warming (Envoy holds its CDS ACK while a
// cluster warms; a cluster warms until its endpoints and secrets arrive),
// listeners in error, and the counters of rejected updates. It reads the
// admin API within a few seconds of its own (ctx may be the one that
// expired) and says so when it cannot.
func (a *Admin) Diagnose(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "envoy %s admin:", a.target)
	if body, err := a.ConfigDump(ctx, "include_eds"); err != nil {
		fmt.Fprintf(&b, "\n  config_dump: %v", err)
	} else {
		b.WriteString(describeDump(body))
	}
	if st, err := a.Listeners(ctx); err == nil {
		for _, name := range slices.Sorted(maps.Keys(st.Errors)) {
			fmt.Fprintf(&b, "\n  listener %s in error: %s", name, st.Errors[name])
		}
	}
	stats, err := a.Stats(ctx, `^(cluster_manager\.(warming_clusters|active_clusters|cds\.)|listener_manager\.(total_listeners_warming|lds\.)|control_plane\.)|\.update_rejected$`)
	if err != nil {
		fmt.Fprintf(&b, "\n  stats: %v", err)
		return b.String()
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(stats)) {
		if strings.HasSuffix(name, ".update_rejected") && stats[name] == 0 && !strings.Contains(name, "_manager.") {
			continue // per-cluster and per-secret counters: only those that rejected something
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, stats[name]))
	}
	fmt.Fprintf(&b, "\n  stats: %s", strings.Join(parts, " "))
	return b.String()
}

// describeDump summarises a /config_dump?include_eds: per type the
// versions applied, and what is warming.
func describeDump(body []byte) string {
	type named struct {
		Name    string `json:"name"`
		Cluster struct {
			Name string `json:"name"`
		} `json:"cluster"`
		VersionInfo string `json:"version_info"`
		// Endpoint configs name their cluster inside endpoint_config.
		EndpointConfig struct {
			ClusterName string `json:"cluster_name"`
		} `json:"endpoint_config"`
	}
	var doc struct {
		Configs []struct {
			Type                   string  `json:"@type"`
			VersionInfo            string  `json:"version_info"`
			DynamicWarmingClusters []named `json:"dynamic_warming_clusters"`
			DynamicActiveClusters  []named `json:"dynamic_active_clusters"`
			DynamicRouteConfigs    []named `json:"dynamic_route_configs"`
			DynamicEndpointConfigs []named `json:"dynamic_endpoint_configs"`
			DynamicActiveSecrets   []named `json:"dynamic_active_secrets"`
			DynamicWarmingSecrets  []named `json:"dynamic_warming_secrets"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Sprintf("\n  config_dump: %v", err)
	}
	// versions lists the distinct versions of a type's resources with how
	// many resources carry each.
	versions := func(rs []named) string {
		count := map[string]int{}
		for _, r := range rs {
			count[r.VersionInfo]++
		}
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(count)) {
			parts = append(parts, fmt.Sprintf("%q x%d", v, count[v]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	names := func(rs []named) string {
		var out []string
		for _, r := range rs {
			n := r.Name
			if n == "" {
				n = r.Cluster.Name
			}
			if n == "" {
				n = r.EndpointConfig.ClusterName
			}
			out = append(out, fmt.Sprintf("%s (version %q)", n, r.VersionInfo))
		}
		return strings.Join(out, ", ")
	}
	var b strings.Builder
	for _, c := range doc.Configs {
		switch {
		case strings.HasSuffix(c.Type, ".ClustersConfigDump"):
			fmt.Fprintf(&b, "\n  CDS version %q; clusters active: %s", c.VersionInfo, versions(c.DynamicActiveClusters))
			if len(c.DynamicWarmingClusters) > 0 {
				fmt.Fprintf(&b, "\n  clusters warming (Envoy holds its CDS ACK until they warm: endpoints or a secret not received?): %s", names(c.DynamicWarmingClusters))
			}
		case strings.HasSuffix(c.Type, ".ListenersConfigDump"):
			fmt.Fprintf(&b, "\n  LDS version %q", c.VersionInfo)
		case strings.HasSuffix(c.Type, ".RoutesConfigDump"):
			fmt.Fprintf(&b, "\n  RDS: %s", versions(c.DynamicRouteConfigs))
		case strings.HasSuffix(c.Type, ".EndpointsConfigDump"):
			fmt.Fprintf(&b, "\n  EDS: %d cluster load assignments", len(c.DynamicEndpointConfigs))
		case strings.HasSuffix(c.Type, ".SecretsConfigDump"):
			fmt.Fprintf(&b, "\n  SDS: %s", versions(c.DynamicActiveSecrets))
			if len(c.DynamicWarmingSecrets) > 0 {
				fmt.Fprintf(&b, "\n  secrets warming (requested, never received): %s", names(c.DynamicWarmingSecrets))
			}
		}
	}
	return b.String()
}
