package harness

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"

	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	dnetwork "github.com/moby/moby/api/types/network"

	"github.com/meshtls/meshtls/mesh"
)

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
