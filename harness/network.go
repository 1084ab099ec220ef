package harness

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/client"

	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	dnetwork "github.com/moby/moby/api/types/network"

	"github.com/meshtls/meshtls/mesh"
)

// runPool is where every run's network comes from: private addresses that
// Docker's default address pools and the machine's own networks leave
// alone on the engines meshtls targets. A run only ever sends traffic
// inside its own network.
var runPool = netip.MustParsePrefix("172.30.0.0/15")

// minRunBits is the widest network one run may take (a /16: 65,533
// addresses): it leaves the pool room for another run.
const minRunBits = 16

// runNetworkBits is the prefix length of m's run network: the smallest
// network, /24 or wider, that holds its address plan (mesh.PlanBits), or
// an error with the fix when the mesh needs more than a /16.
func runNetworkBits(m *mesh.Mesh) (int, error) {
	bits := m.PlanBits()
	if bits < minRunBits {
		return 0, fmt.Errorf("the mesh needs a network wider than /%d for its %d workloads and %d Services (each Service that is not headless takes a cluster IP from the run's network): split the bundle into smaller meshes", minRunBits, len(m.Workloads), len(m.Services))
	}
	return bits, nil
}

// createNetwork makes the run's internal network before any container
// starts, so that every workload's address is known: a network of
// runNetworkBits(m), on a slot of runPool that no network of the engine
// overlaps, tried in random order (two runs starting at once seldom pick
// the same slot, and the engine refuses the second: it tries the next).
func (r *Runtime) createNetwork(ctx context.Context, m *mesh.Mesh) error {
	bits, err := runNetworkBits(m)
	if err != nil {
		return err
	}
	ns, err := r.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return err
	}
	var used []netip.Prefix
	for _, n := range ns.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				used = append(used, c.Subnet)
			}
		}
	}
	free := freePrefixes(runPool, bits, used)
	if len(free) == 0 {
		return fmt.Errorf("creating the internal network: no free /%d left in %s: other runs' networks use it (docker network ls --filter label=%s)", bits, runPool, labelRun)
	}
	var lastErr error
	for _, prefix := range free {
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
		// An overlap is a network created since the list (another run
		// starting now): try the next slot.
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("creating the internal network: %w", lastErr)
}

// freePrefixes is every bits-long prefix of pool that overlaps none of
// used, in random order.
func freePrefixes(pool netip.Prefix, bits int, used []netip.Prefix) []netip.Prefix {
	if bits < pool.Bits() || bits > 32 {
		return nil
	}
	var free []netip.Prefix
	base := pool.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	step := uint32(1) << (32 - bits)
	for i := uint32(0); i < 1<<(bits-pool.Bits()); i++ {
		a := start + i*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits)
		if !slices.ContainsFunc(used, p.Overlaps) {
			free = append(free, p)
		}
	}
	mrand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	return free
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
		ips := r.serviceAddrs(s)
		if s.ExternalName != "" {
			// Kubernetes DNS answers a CNAME to the external name: the
			// alias resolves to what that name resolves to.
			ips = r.nameAddrs(r.mesh.ExternalNameTarget(s))
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

// serviceAddrs are what a Service's name resolves to: its cluster IP, or
// a headless Service's endpoints (a selector-less one's addresses outside
// the cluster as written: the pods' DNAT takes them to their workload).
func (r *Runtime) serviceAddrs(s *mesh.Service) []netip.Addr {
	if !s.Headless() {
		if vip, ok := r.addrs[s.VIPKey()]; ok {
			return []netip.Addr{vip}
		}
		return nil
	}
	var ips []netip.Addr
	for _, e := range r.mesh.Endpoints(s) {
		ips = append(ips, r.addrs[e.ID()])
	}
	for _, e := range s.ManualEndpoints {
		if e.Answer != nil {
			ips = append(ips, e.Addr)
		}
	}
	return ips
}

// nameAddrs resolves an ExternalName's target: a Service of the bundle by
// its full name, else the workload with that hostname (mesh validation
// refuses any other name).
func (r *Runtime) nameAddrs(h string) []netip.Addr {
	if s, ok := r.mesh.ServiceByHost(h, ""); ok && s.Hostname() == h {
		return r.serviceAddrs(s)
	}
	for _, w := range r.mesh.Workloads {
		if slices.Contains(w.Hostnames, h) {
			return []netip.Addr{r.addrs[w.ID()]}
		}
	}
	return nil
}

// serviceDNAT lists the --dnat arguments that stand in for kube-proxy (for
// the app in pods without a sidecar, for the proxy's own connections in
// pods with one): each port of a cluster IP goes to one of the
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
			case s.Manual && hasVIP:
				// A selector-less Service: its endpoints' own ports, and an
				// address outside the cluster goes straight to the
				// workload that answers it.
				var targets []string
				for _, e := range s.ManualEndpoints {
					port, ok := e.Ports[sp.Name]
					if !ok {
						continue
					}
					w := e.Pod
					if w == nil {
						w = e.Answer
					}
					targets = append(targets, fmt.Sprintf("%s:%d", r.addrs[w.ID()], port))
				}
				if len(targets) > 0 {
					out = append(out, "--dnat", fmt.Sprintf("%s:%d=%s", vip, sp.Port, strings.Join(targets, ",")))
				}
			case s.Manual:
				// Headless: its pods' and outside addresses are dialled
				// as they are (below for outside ones).
			case hasVIP && len(eps) > 0:
				// Gateways too: they listen on the targetPort of a Gateway
				// server's port that is a port of their Service
				// (mesh.GatewayPort), so 80 -> 8080 reaches their listener.
				var targets []string
				for _, e := range eps {
					targets = append(targets, fmt.Sprintf("%s:%d", r.addrs[e.ID()], tp))
				}
				out = append(out, "--dnat", fmt.Sprintf("%s:%d=%s", vip, sp.Port, strings.Join(targets, ",")))
			case !hasVIP && tp != sp.Port:
				for _, e := range eps {
					out = append(out, "--dnat", fmt.Sprintf("%s:%d=%d", r.addrs[e.ID()], sp.Port, tp))
				}
			}
		}
	}
	// An address outside the cluster that an external workload stands in
	// for (Workload spec.addresses: an Endpoints address, a ServiceEntry
	// endpoint) is that workload in every pod: nothing leaves the run's
	// network for it.
	for _, w := range r.mesh.Workloads {
		for _, a := range w.Addresses {
			for _, p := range w.Ports {
				out = append(out, "--dnat", fmt.Sprintf("%s:%d=%s:%d", a, p.Port, r.addrs[w.ID()], p.Port))
			}
		}
	}
	return out
}
