package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"

	dnetwork "github.com/moby/moby/api/types/network"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/pod"
	"github.com/meshtls/meshtls/xds"
)

// Ports and ids the capture and the proxies agree on (as Istio's defaults).
const (
	proxyUID     = 1337
	outboundPort = 15001
	inboundPort  = 15006
)

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
	Timing PodTiming
	netpol string // the NetworkPolicy filter programmed (pod.NetPolicy JSON); "": none
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

// notACKed is err, from waiting for the proxy's ACK, with the proxy named
// and, when the wait ran out of time, what its Envoy runs and waits for
// (xds.Admin.Diagnose: warming clusters, versions applied, rejected
// updates): a push that is never ACKed explains itself.
func (p *Pod) notACKed(ctx context.Context, err error) error {
	diag := ""
	if p.Admin != nil && errors.Is(err, context.DeadlineExceeded) {
		diag = "\n" + p.Admin.Diagnose(ctx)
	}
	return fmt.Errorf("proxy %s: %w%s%s", p.W.ID(), err, diag, p.envoyTail())
}

// startPod starts the agent (owner of the network namespace) and, for
// proxies, the Envoy container. The agent's container first does the
// capture init's work (istio-init's redirection, or kube-proxy's service
// port translation in a pod without sidecar) with NET_ADMIN, then runs the
// app without it (pod/handover.go): two containers per sidecar pod, not
// three, and Envoy keeps its own uid 1337 and mount view.
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
		filepath.Join(r.Dir, osRootsFile) + ":" + osTrustStore + ":ro",
	}
	netName := r.netw.Name
	ip := p.IP
	cmd := []string{"agent", "--config", pod.ConfigFile}
	// Every pod's container starts with the init's work: istio-init's
	// capture for a sidecar, kube-proxy's service DNAT, the NetworkPolicy
	// filter; the init drops CAP_NET_ADMIN before the app runs. The
	// container keeps the capability so that Apply can reprogram the
	// filter in the pod, as a network plugin does from the node.
	initArgs := []string{"init", "--no-capture"}
	if w.Sidecar && !w.Gateway {
		// The service DNAT applies to what the capture lets out untouched:
		// the sidecar's own connections to a cluster IP (PassthroughCluster)
		// reach an endpoint, as through kube-proxy on a node.
		initArgs = append([]string{"init", "--uid", fmt.Sprint(proxyUID), "--gid", fmt.Sprint(proxyUID),
			"--outbound-port", fmt.Sprint(outboundPort), "--inbound-port", fmt.Sprint(inboundPort)}, captureArgs(w.Capture)...)
	}
	if !w.Gateway {
		initArgs = append(initArgs, r.serviceDNAT()...)
	}
	// NetworkPolicy: programmed before the app and the proxy run.
	np, err := r.netPolicyArgs(p)
	if err != nil {
		return err
	}
	initArgs = append(initArgs, np...)
	cmd = append(append(initArgs, "--"), cmd...)
	t := time.Now()
	agent, err := testcontainers.GenericContainer(uncancelled(ctx), testcontainers.GenericContainerRequest{
		Started: true,
		Logger:  r.containerLogger(),
		ContainerRequest: testcontainers.ContainerRequest{
			Name:     base + "-agent",
			Image:    r.images.Pod,
			Cmd:      cmd,
			Labels:   r.labels("agent", w.ID()),
			Networks: []string{netName},
			HostConfigModifier: func(hc *hostConfig) {
				hc.Binds = mounts
				hc.ExtraHosts = r.hosts(w)
				// Gateways bind 80/443 as uid 1337, as Istio's gateways do with this sysctl.
				hc.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
				hc.CapAdd = []string{"NET_ADMIN"} // the init drops it before the app runs
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
	if err := r.waitLine(ctx, agent.GetContainerID(), pod.ReadyLine); err != nil {
		return fmt.Errorf("starting pod %s: %w", w.ID(), err)
	}
	p.Timing.Agent = time.Since(t)
	if err := ctx.Err(); err != nil {
		return err
	}
	p.Agent = newAgentClient(filepath.Join(p.Dir, "agent.sock"))
	if !w.HasProxy() {
		return nil
	}
	netns := "container:" + agent.GetContainerID()
	p.Logs, p.EnvLog = newLogBuffer(), newLogBuffer()
	// Access-log lines are flushed as they come (xds.CommandLine).
	args := xds.CommandLine(xds.BootstrapOptions{ConfigPath: pod.RunDir + "/envoy.json"})
	t = time.Now()
	envoy, err := testcontainers.GenericContainer(uncancelled(ctx), testcontainers.GenericContainerRequest{
		Started: true,
		Logger:  r.containerLogger(),
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
	p.Timing.Envoy, p.Timing.envoyStarted = time.Since(t), time.Now()
	if err != nil {
		return fmt.Errorf("starting the proxy of %s: %w", w.ID(), err)
	}
	if err := r.follow(envoy.GetContainerID(), p.Logs, p.EnvLog); err != nil {
		return fmt.Errorf("following the logs of %s's proxy: %w", w.ID(), err)
	}
	p.Admin = xds.NewAdmin(filepath.Join(p.Dir, "admin.sock"))
	return nil
}

// osRootsFile is the run's OS trust store (run dir relative), mounted over
// osTrustStore in every container.
const osRootsFile = "os-roots/ca-certificates.crt"

// writeOSTrustStore writes the run's OS trust store: this machine's CA
// bundle (what the Envoy image carries) plus the public CA, so SIMPLE
// origination without a CA trusts a server from the public CA, as a real
// proxy trusts a public site, and none of the run's other CAs.
// Source: pilot/pkg/networking/core/cluster_tls.go (no CA: the system roots).
func writeOSTrustStore(path string, set *certs.Set) error {
	var system []byte
	if ca := systemCABundle(); ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("reading this machine's CA bundle for the pods' trust store: %w", err)
		}
		system = b
	}
	return certs.WriteOSTrustStore(path, system, set)
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
	issue := r.certs.AppServer
	if w.AppCA == certs.PublicCA {
		issue = r.certs.PublicServer
	}
	app, err := issue(w.ID(), tlsNames)
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

// chownOrOpen gives uid a directory: chown when we may (root), otherwise
// open it to everyone (only sockets and the bootstrap live there).
func chownOrOpen(dir string, uid int) error {
	if os.Geteuid() == 0 {
		return os.Chown(dir, uid, uid)
	}
	return os.Chmod(dir, 0o777)
}
