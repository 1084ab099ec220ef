// Package harness is the runtime: it builds images, creates an internal
// network, starts pods (app agent + Envoy sidecar sharing a network
// namespace, traffic captured like istio-init), gateways and plain or
// external workloads, pushes each proxy its config over ADS, runs checks and
// collects evidence, and removes everything it made on every exit path.
// Istio semantics live in mesh and xds, not here.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	dnetwork "github.com/moby/moby/api/types/network"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/pod"
	"github.com/meshtls/meshtls/translate"
	"github.com/meshtls/meshtls/xds"
)

// Ports and ids the capture and the proxies agree on (as Istio's defaults).
const (
	proxyUID     = 1337
	outboundPort = 15001
	inboundPort  = 15006
)

// Option configures a Runtime.
type Option func(*options)

type options struct {
	logf         func(string, ...any)
	startWait    time.Duration
	envoyVersion string
}

// WithLogf sends progress lines to f (default: discarded).
func WithLogf(f func(string, ...any)) Option { return func(o *options) { o.logf = f } }

// WithStartTimeout bounds how long pods may take to be ready (default 90s).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startWait = d } }

// Runtime is one running mesh.
type Runtime struct {
	opts   options
	cli    *client.Client
	RunID  string
	Dir    string // host run directory (sockets, bootstraps, CA files)
	images Images
	certs  *certs.Store
	xds    *xds.Server
	netw   *testcontainers.DockerNetwork
	prefix netip.Prefix

	mu    sync.Mutex
	mesh  *mesh.Mesh
	addrs map[string]netip.Addr
	pods  map[string]*Pod // by workload id
	// decisions are what translation used for each proxy's config (the
	// Istio resources that decided), by workload id, for the trace.
	decisions map[string]map[string]mesh.Decision

	closeOnce sync.Once
	closeErr  error
}

// Pod is one running workload.
type Pod struct {
	W      *mesh.Workload
	IP     netip.Addr
	Dir    string // host dir mounted at pod.RunDir
	agent  testcontainers.Container
	envoy  testcontainers.Container
	Agent  *AgentClient
	Admin  *xds.Admin // nil without a proxy
	Logs   *LogBuffer // Envoy stdout (access log) lines; nil without a proxy
	EnvLog *LogBuffer // Envoy stderr
}

// Start brings a mesh up: nothing is left behind if it fails.
func Start(ctx context.Context, m *mesh.Mesh, opt ...Option) (rt *Runtime, err error) {
	o := options{logf: func(string, ...any) {}, startWait: 90 * time.Second}
	for _, f := range opt {
		f(&o)
	}
	r := &Runtime{opts: o, pods: map[string]*Pod{}}
	defer func() {
		if err != nil {
			err = explainEngineLoss(r.cli, err)
			_ = r.Close()
		}
	}()
	if r.cli, err = dockerClient(ctx); err != nil {
		return nil, err
	}
	if err := sweepDeadRuns(ctx, r.cli, o.logf); err != nil {
		o.logf("warning: removing leftovers of dead runs: %v", err)
	}
	if r.images, err = ensureImages(ctx, r.cli, o.envoyVersion, o.logf); err != nil {
		return nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	r.RunID = hex.EncodeToString(b[:])
	if r.Dir, err = os.MkdirTemp("", "meshtls-"+r.RunID+"-"); err != nil {
		return nil, err
	}
	if err := checkSocketPaths(r.Dir, m); err != nil {
		return nil, err
	}
	// Proxies run as uid 1337 and must traverse the run dir.
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		return nil, err
	}
	set, err := certs.NewSet()
	if err != nil {
		return nil, err
	}
	r.certs = certs.NewStore(set)
	if err := certs.WriteCAs(filepath.Join(r.Dir, "ca"), set); err != nil {
		return nil, err
	}
	if err := r.startXDS(); err != nil {
		return nil, err
	}
	if err := r.createNetwork(ctx); err != nil {
		return nil, err
	}
	if err := r.startPods(ctx, m); err != nil {
		return nil, err
	}
	return r, nil
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is
// 108 bytes with the terminating NUL); a longer one fails with a bare
// "bind: invalid argument".
const maxSocketPath = 107

// checkSocketPaths fails early, with the fix, when a socket under dir would
// be too long: the xDS socket and each pod's agent and admin sockets.
func checkSocketPaths(dir string, m *mesh.Mesh) error {
	longest := filepath.Join(dir, "xds", "xds.sock")
	for _, w := range m.Workloads {
		if p := filepath.Join(dir, "pods", w.Namespace+"."+w.Name, "admin.sock"); len(p) > len(longest) {
			longest = p
		}
	}
	if len(longest) > maxSocketPath {
		return fmt.Errorf("the run directory is too deep for Unix sockets: %s is %d bytes, the limit is %d; set TMPDIR to a shorter directory (e.g. /tmp) or use shorter workload names", longest, len(longest), maxSocketPath)
	}
	return nil
}

func (r *Runtime) startXDS() error {
	dir := filepath.Join(r.Dir, "xds")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lis, err := xds.ListenUnix(filepath.Join(dir, "xds.sock"))
	if err != nil {
		return err
	}
	r.xds = xds.NewServer()
	go func() { _ = r.xds.Serve(lis) }()
	return nil
}

// createNetwork makes the run's internal network on a free /24, so that
// every workload's address is known before any container starts.
func (r *Runtime) createNetwork(ctx context.Context) error {
	var lastErr error
	for i := 0; i < 32; i++ {
		var b [2]byte
		_, _ = rand.Read(b[:])
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 30 + b[0]%2, b[1], 0}), 24)
		nw, err := tcnetwork.New(uncancelled(ctx),
			tcnetwork.WithInternal(),
			tcnetwork.WithLabels(r.labels("network", "")),
			tcnetwork.WithIPAM(&dnetwork.IPAM{Driver: "default", Config: []dnetwork.IPAMConfig{{
				Subnet: prefix, Gateway: prefix.Addr().Next(),
			}}}),
		)
		if err == nil {
			r.netw, r.prefix = nw, prefix
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("creating the internal network: %w", lastErr)
}

func (r *Runtime) labels(role, podID string) map[string]string {
	l := runLabels(r.RunID)
	l[labelRole] = role
	if podID != "" {
		l[labelPod] = podID
	}
	return l
}

// startPods starts every workload concurrently and waits until each proxy
// has ACKed its config and has no warming listener.
func (r *Runtime) startPods(ctx context.Context, m *mesh.Mesh) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.startWait)
	defer cancel()
	r.mesh = m
	if err := m.CheckAddressPlan(r.prefix); err != nil {
		return err
	}
	r.addrs = m.AddressPlan(r.prefix)
	versions := map[string]string{}
	for _, w := range m.Workloads {
		p := &Pod{W: w, IP: r.addrs[w.ID()]}
		r.pods[w.ID()] = p
		if w.HasProxy() {
			v, err := r.push(w)
			if err != nil {
				return err
			}
			versions[w.ID()] = v
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range r.pods {
		g.Go(func() error { return r.startPod(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return r.waitProxies(ctx, versions)
}

// push translates one proxy's config and hands it to the xDS server.
func (r *Runtime) push(w *mesh.Workload) (string, error) {
	res, err := translate.Translate(r.mesh, w, &translate.Env{Addrs: r.addrs, Certs: r.certs})
	if err != nil {
		return "", fmt.Errorf("translating config for %s: %w", w.ID(), err)
	}
	if r.decisions == nil {
		r.decisions = map[string]map[string]mesh.Decision{}
	}
	r.decisions[w.ID()] = res.Decisions
	return r.xds.Set(w.ID(), res)
}

func (r *Runtime) waitProxies(ctx context.Context, versions map[string]string) error {
	g, gctx := errgroup.WithContext(ctx)
	for id, v := range versions {
		p := r.pods[id]
		g.Go(func() error {
			if err := r.xds.Wait(gctx, id, v); err != nil {
				return fmt.Errorf("proxy %s: %w%s", id, err, p.envoyTail())
			}
			if err := p.Admin.WaitNoWarming(gctx); err != nil {
				return fmt.Errorf("proxy %s: %w%s", id, err, p.envoyTail())
			}
			return nil
		})
	}
	return g.Wait()
}

func (p *Pod) envoyTail() string {
	if p.EnvLog == nil {
		return ""
	}
	lines := p.EnvLog.Lines()
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\nEnvoy said:\n  " + strings.Join(lines, "\n  ")
}

// hosts is the pod's /etc/hosts: our cluster DNS. Service names resolve
// to the Service's cluster IP (a headless Service's to its endpoints' pod
// addresses), in every short form Kubernetes DNS accepts from the pod's
// namespace; hostnames resolve to their workload. Static entries make
// resolution instant and never send a query off the machine.
func (r *Runtime) hosts(w *mesh.Workload) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string, ip netip.Addr) {
		e := name + ":" + ip.String()
		if name != "" && ip.IsValid() && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, s := range r.mesh.Services {
		ips := []netip.Addr{r.addrs[s.VIPKey()]}
		if s.Headless() {
			ips = nil
			for _, e := range r.mesh.Endpoints(s) {
				ips = append(ips, r.addrs[e.ID()])
			}
		}
		for _, ip := range ips {
			add(s.Hostname(), ip)
			add(s.Name+"."+s.Namespace+".svc", ip)
			add(s.Name+"."+s.Namespace, ip)
			if s.Namespace == w.Namespace {
				add(s.Name, ip)
			}
		}
	}
	for _, o := range r.mesh.Workloads {
		for _, h := range o.Hostnames {
			add(h, r.addrs[o.ID()])
		}
	}
	return out
}

// startPod starts the agent (owner of the network namespace), the capture
// init for sidecar pods, and the Envoy container for proxies.
func (r *Runtime) startPod(ctx context.Context, p *Pod) error {
	w := p.W
	p.Dir = filepath.Join(r.Dir, "pods", w.Namespace+"."+w.Name)
	if err := r.writePodFiles(p); err != nil {
		return err
	}
	base := "meshtls-" + r.RunID + "-" + w.Namespace + "-" + w.Name
	mounts := []string{
		p.Dir + ":" + pod.RunDir,
		filepath.Join(r.Dir, "ca") + ":" + pod.CADir + ":ro",
	}
	netName := r.netw.Name
	ip := p.IP
	agent, err := testcontainers.GenericContainer(uncancelled(ctx), testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Name:       base + "-agent",
			Image:      r.images.Pod,
			Cmd:        []string{"agent", "--config", pod.ConfigFile},
			Labels:     r.labels("agent", w.ID()),
			Networks:   []string{netName},
			WaitingFor: waitLog(pod.ReadyLine),
			HostConfigModifier: func(hc *hostConfig) {
				hc.Binds = mounts
				hc.ExtraHosts = r.hosts(w)
				// Gateways bind 80/443 as uid 1337, as Istio's gateways do with this sysctl.
				hc.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
			},
			EndpointSettingsModifier: func(es map[string]*dnetwork.EndpointSettings) {
				if s := es[netName]; s != nil {
					s.IPAMConfig = &dnetwork.EndpointIPAMConfig{IPv4Address: ip}
				}
			},
		},
	})
	p.agent = agent
	if err != nil {
		return fmt.Errorf("starting pod %s: %w", w.ID(), err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.Agent = newAgentClient(filepath.Join(p.Dir, "agent.sock"))
	netns := "container:" + agent.GetContainerID()
	if !w.HasProxy() {
		if dnat := r.serviceDNAT(); len(dnat) > 0 {
			return r.runInit(ctx, p, base, netns, append([]string{"init", "--no-capture"}, dnat...))
		}
		return nil
	}
	if w.Sidecar && !w.Gateway {
		if err := r.runInit(ctx, p, base, netns, append([]string{"init", "--uid", fmt.Sprint(proxyUID), "--gid", fmt.Sprint(proxyUID),
			"--outbound-port", fmt.Sprint(outboundPort), "--inbound-port", fmt.Sprint(inboundPort)}, captureArgs(w.Capture)...)); err != nil {
			return err
		}
	}
	p.Logs, p.EnvLog = newLogBuffer(), newLogBuffer()
	// Access-log lines are evidence a check waits for: flush them at once
	// rather than every 10s (Envoy's default).
	args := append(xds.CommandLine(xds.BootstrapOptions{ConfigPath: pod.RunDir + "/envoy.json"}),
		"--file-flush-interval-msec", "10")
	envoy, err := testcontainers.GenericContainer(uncancelled(ctx), testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Name:   base + "-envoy",
			Image:  r.images.Envoy,
			Cmd:    args,
			Labels: r.labels("envoy", w.ID()),
			HostConfigModifier: func(hc *hostConfig) {
				hc.NetworkMode = containerNetworkMode(netns)
				hc.Binds = append(mounts, filepath.Join(r.Dir, "xds")+":"+pod.RunDir+"/xds")
			},
		},
	})
	p.envoy = envoy
	if err != nil {
		return fmt.Errorf("starting the proxy of %s: %w", w.ID(), err)
	}
	if err := r.follow(envoy.GetContainerID(), p.Logs, p.EnvLog); err != nil {
		return fmt.Errorf("following the logs of %s's proxy: %w", w.ID(), err)
	}
	p.Admin = xds.NewAdmin(filepath.Join(p.Dir, "admin.sock"))
	return nil
}

// serviceDNAT lists the --dnat arguments that stand in for kube-proxy in
// pods without a sidecar: each port of a cluster IP goes to one of the
// Service's endpoints (its target port), chosen per connection; a headless
// Service's port that differs from its targetPort is translated on each
// endpoint's own address.
func (r *Runtime) serviceDNAT() []string {
	var out []string
	for _, s := range r.mesh.Services {
		eps := r.mesh.Endpoints(s)
		vip, hasVIP := r.addrs[s.VIPKey()]
		for _, sp := range s.Ports {
			tp := sp.TargetPort
			if tp == 0 {
				tp = sp.Port
			}
			switch {
			case hasVIP && len(eps) > 0:
				var targets []string
				for _, e := range eps {
					port := tp
					if e.Gateway {
						// meshtls's gateways listen on the Gateway server's port
						// itself, so a gateway Service's translation (80 to 8080
						// in Istio's charts) would miss their listeners.
						port = sp.Port
					}
					targets = append(targets, fmt.Sprintf("%s:%d", r.addrs[e.ID()], port))
				}
				out = append(out, "--dnat", fmt.Sprintf("%s:%d=%s", vip, sp.Port, strings.Join(targets, ",")))
			case !hasVIP && tp != sp.Port:
				for _, e := range eps {
					if e.Gateway {
						continue // listens on the server's port itself (above)
					}
					out = append(out, "--dnat", fmt.Sprintf("%s:%d=%d", r.addrs[e.ID()], sp.Port, tp))
				}
			}
		}
	}
	return out
}

// runInit programs the pod's traffic capture as istio-init does (or, in a
// pod without sidecar, kube-proxy's service port translation), in a
// short-lived container that alone holds NET_ADMIN.
func (r *Runtime) runInit(ctx context.Context, p *Pod, base, netns string, cmd []string) error {
	c, err := testcontainers.GenericContainer(uncancelled(ctx), testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Name:       base + "-init",
			Image:      r.images.Pod,
			Cmd:        cmd,
			Labels:     r.labels("init", p.W.ID()),
			WaitingFor: waitExit(),
			HostConfigModifier: func(hc *hostConfig) {
				hc.NetworkMode = containerNetworkMode(netns)
				hc.CapAdd = []string{"NET_ADMIN"}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("capture init of %s: %w", p.W.ID(), err)
	}
	// The exited init container is removed with the run (by label), off
	// the start path.
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		out := containerLogs(ctx, c)
		return fmt.Errorf("capture init of %s failed (exit %d): %s", p.W.ID(), st.ExitCode, out)
	}
	return nil
}

// writePodFiles lays out the pod dir: agent config, app and client
// certificates (keys 0600), Envoy bootstrap.
func (r *Runtime) writePodFiles(p *Pod) error {
	w := p.W
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return err
	}
	if w.HasProxy() {
		// Envoy (uid 1337) creates its admin socket here.
		if err := chownOrOpen(p.Dir, proxyUID); err != nil {
			return err
		}
	}
	cfg := pod.Config{Name: w.Name, Namespace: w.Namespace, Capture: true}
	var tlsNames []string
	for _, pt := range w.Ports {
		cfg.Ports = append(cfg.Ports, pod.Port{Name: pt.Name, Port: pt.Port, TLS: pt.TLS, ServerFirst: pt.ServerFirst})
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "pod.json"), b, 0o644); err != nil {
		return err
	}
	certDir := filepath.Join(p.Dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	tlsNames = append(tlsNames, r.appNames(w)...)
	app, err := r.certs.AppServer(w.ID(), tlsNames)
	if err != nil {
		return err
	}
	if err := certs.WriteKeyPair(certDir, "app", app); err != nil {
		return err
	}
	for _, ca := range []string{"client", "untrusted"} {
		kp, err := r.certs.Client(ca)
		if err != nil {
			return err
		}
		if err := certs.WriteKeyPair(certDir, ca, kp); err != nil {
			return err
		}
	}
	if !w.HasProxy() {
		return nil
	}
	boot, err := xds.Bootstrap(xds.BootstrapOptions{NodeID: w.ID(), Cluster: w.Name + "." + w.Namespace})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Dir, "envoy.json"), boot, 0o644)
}

// appNames are the DNS names an app's own certificate carries: its service
// names (every short form) and its hostnames.
func (r *Runtime) appNames(w *mesh.Workload) []string {
	var out []string
	for _, s := range r.mesh.Services {
		for _, e := range r.mesh.Endpoints(s) {
			if e == w {
				out = append(out, s.Name, s.Name+"."+s.Namespace, s.Name+"."+s.Namespace+".svc", s.Hostname())
			}
		}
	}
	out = append(out, w.Hostnames...)
	if len(out) == 0 {
		out = append(out, w.Name)
	}
	return out
}

// Apply pushes new Istio config for the same workloads and returns when
// every proxy has ACKed it; a NACK fails at once with Envoy's message.
func (r *Runtime) Apply(ctx context.Context, m *mesh.Mesh) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := sameWorkloads(r.mesh, m); err != nil {
		return err
	}
	// Keep our workload objects: pods are keyed by them.
	m.Workloads = r.mesh.Workloads
	r.mesh = m
	return r.pushAll(ctx)
}

// pushAll translates every proxy's config, hands it to the xDS server and
// waits until each proxy ACKed it with no listener warming.
func (r *Runtime) pushAll(ctx context.Context) error {
	versions := map[string]string{}
	for _, w := range r.mesh.Workloads {
		if !w.HasProxy() {
			continue
		}
		v, err := r.push(w)
		if err != nil {
			return err
		}
		versions[w.ID()] = v
	}
	return r.waitProxies(ctx, versions)
}

func sameWorkloads(a, b *mesh.Mesh) error {
	if workloadKey(a) != workloadKey(b) {
		return errors.New("the new config declares other workloads than the running mesh: start a new mesh for it")
	}
	return nil
}

// Repush translates and pushes every proxy's config again, for changes
// made outside the mesh (certificates), and waits for every ACK.
func (r *Runtime) Repush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pushAll(ctx)
}

// RotateWorkload issues a new certificate for a service account and pushes
// it (SDS), returning it; the next connection presents it.
func (r *Runtime) RotateWorkload(ctx context.Context, ns, sa string) (*certs.KeyPair, error) {
	kp, err := r.certs.RotateWorkload(ns, sa)
	if err != nil {
		return nil, err
	}
	return kp, r.Repush(ctx)
}

// Pod returns a running workload by ref ("name" or "ns/name").
func (r *Runtime) Pod(ref string) (*Pod, bool) {
	w, ok := r.mesh.Workload(ref)
	if !ok {
		return nil, false
	}
	p, ok := r.pods[w.ID()]
	return p, ok
}

// Certs is the run's certificate store.
func (r *Runtime) Certs() *certs.Store { return r.certs }

// Close removes every container and network of the run and the run dir.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var errs []error
		if r.cli != nil && r.RunID != "" {
			errs = append(errs, removeRun(ctx, r.cli, r.RunID))
		}
		if r.xds != nil {
			r.xds.Stop()
		}
		if r.Dir != "" {
			errs = append(errs, os.RemoveAll(r.Dir))
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
