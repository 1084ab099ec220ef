package crosscheck

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// undeclaredPort is a port no bundle declares, to see what a proxy does
// with traffic for a port it was not told about.
const undeclaredPort = 9999

// Difference is one key whose values differ between the configs.
type Difference struct {
	Bundle, Proxy, Key string
	Istio, Meshtls     string // "(absent)" when one side has no such line
	Behaviour          bool
	Live               bool   // a check's outcome on real proxies (the live differential)
	Allowed            string // the allowlist reason, "" when not allowed
}

func (d Difference) String() string {
	kind := "structural"
	switch {
	case d.Live:
		kind = "LIVE"
	case d.Behaviour:
		kind = "BEHAVIOUR"
	}
	s := fmt.Sprintf("%s %s: %s: %s\n    istiod:  %s\n    meshtls: %s", kind, filepath.Base(d.Bundle), d.Proxy, d.Key, d.Istio, d.Meshtls)
	if d.Allowed != "" {
		s += "\n    allowed: " + d.Allowed
	}
	return s
}

// Unexplained reports a behavioural difference the allowlist does not explain.
func (d Difference) Unexplained() bool { return d.Behaviour && d.Allowed == "" }

// ProxyReport is both skeletons of one proxy, key by key.
type ProxyReport struct {
	Proxy string
	Keys  []string
	Istio map[string]Line
	Ours  map[string]Line
}

// Compare builds both skeletons of every proxy of b and their differences.
func Compare(b *Bundle, ic *IstioConfig, ours map[string]*translate.Resources, allow *Allowlist) ([]ProxyReport, []Difference) {
	var reports []ProxyReport
	var diffs []Difference
	names := map[netip.Addr]string{}
	for id, a := range b.Addrs {
		names[a] = id
	}
	// Both sides dial a Service's cluster IP from the address plan (the
	// oracle's export gives istiod the same ones; headless Services have
	// none: an endpoint).
	dstOf := func(s *mesh.Service) netip.Addr {
		if vip, ok := b.Addrs[s.VIPKey()]; ok {
			return vip
		}
		if eps := b.Mesh.Endpoints(s); len(eps) > 0 {
			return b.Addrs[eps[0].ID()]
		}
		return netip.MustParseAddr("10.88.0.250")
	}
	for _, w := range b.Mesh.Workloads {
		if !w.HasProxy() {
			continue
		}
		ist := skeleton(b, w, newConfig(ic.Proxies[w.ID()], names), dstOf)
		our := skeleton(b, w, newConfig(ours[w.ID()], names), dstOf)
		r := ProxyReport{Proxy: w.ID(), Istio: ist, Ours: our}
		for k := range ist {
			r.Keys = append(r.Keys, k)
		}
		for k := range our {
			if _, ok := ist[k]; !ok {
				r.Keys = append(r.Keys, k)
			}
		}
		r.Keys = sortedKeys(setOf(r.Keys))
		for _, k := range r.Keys {
			il, iok := ist[k]
			ol, ook := our[k]
			if iok && ook && il.Value == ol.Value {
				continue
			}
			d := Difference{Bundle: b.Name, Proxy: w.ID(), Key: k, Istio: "(absent)", Meshtls: "(absent)", Behaviour: il.Behaviour || ol.Behaviour}
			if iok {
				d.Istio = il.Value
			}
			if ook {
				d.Meshtls = ol.Value
			}
			d.Allowed = allow.Explain(d)
			diffs = append(diffs, d)
		}
		reports = append(reports, r)
	}
	return reports, diffs
}

func setOf(keys []string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// skeleton is one proxy's lines; dstOf is where an app's connection to a
// Service goes: its cluster IP.
func skeleton(b *Bundle, w *mesh.Workload, c *config, dstOf func(*mesh.Service) netip.Addr) map[string]Line {
	out := map[string]Line{}
	add := func(ls ...Line) {
		for _, l := range ls {
			out[l.Key] = l
		}
	}
	if c.res == nil {
		return out
	}
	add(c.clusterLines()...)
	self := b.Addrs[w.ID()]
	sim := func(key string, l string) { add(Line{Key: key, Value: l, Behaviour: true}) }
	if w.Gateway {
		for _, l := range c.res.Listeners {
			add(c.chainLines(fmt.Sprintf("listener %s:%d", l.GetAddress().GetSocketAddress().GetAddress(), l.GetAddress().GetSocketAddress().GetPortValue()), l)...)
		}
		seen := map[string]bool{}
		for _, gs := range b.Mesh.GatewayServers(w) {
			// Keys name the server's port; connections go where a client
			// through the gateway's Service lands: its targetPort.
			port := gs.Server.GetPort().GetNumber()
			listen, _ := b.Mesh.GatewayPort(w, port)
			for _, h := range gs.Server.GetHosts() {
				if i := strings.IndexByte(h, '/'); i >= 0 {
					h = h[i+1:]
				}
				if strings.HasPrefix(h, "*") {
					h = "any" + strings.TrimPrefix(h, "*")
				}
				if h == "any" {
					h = "any.example.com"
				}
				k := fmt.Sprintf("sim gateway %d %s", port, h)
				if seen[k] {
					continue
				}
				seen[k] = true
				dst := netip.AddrPortFrom(self, uint16(listen))
				l := c.pickListener(dst, "")
				sim(k+" plaintext", c.simulate(l, plainConn(dst, h)))
				sim(k+" tls", c.simulate(l, appTLSConn(dst, h)))
			}
			k := fmt.Sprintf("sim gateway %d (no SNI) tls", port)
			dst := netip.AddrPortFrom(self, uint16(listen))
			sim(k, c.simulate(c.pickListener(dst, ""), appTLSConn(dst, "")))
		}
		return out
	}

	// Inbound: connections to this pod's ports, as a peer sends them.
	var in = c.listener("virtualInbound")
	if in != nil {
		add(c.chainLines("inbound", in)...)
	}
	ports := []uint32{}
	for _, p := range w.Ports {
		ports = append(ports, p.Port)
	}
	ports = append(ports, undeclaredPort)
	for _, p := range ports {
		dst := netip.AddrPortFrom(self, uint16(p))
		label := fmt.Sprintf("sim inbound %d", p)
		if p == undeclaredPort {
			label = fmt.Sprintf("sim inbound %d (undeclared)", p)
		}
		sim(label+" mtls", c.simulate(in, mtlsConn(dst)))
		sim(label+" mtls-tcp", c.simulate(in, mtlsTCPConn(dst)))
		sim(label+" plaintext", c.simulate(in, plainConn(dst, "x")))
		sim(label+" app-tls", c.simulate(in, appTLSConn(dst, "x")))
	}

	// Outbound: this pod's app calling each Service port.
	for _, s := range b.Mesh.Services {
		for _, p := range s.Ports {
			dst := netip.AddrPortFrom(dstOf(s), uint16(p.Port))
			host := fmt.Sprintf("%s:%d", s.Hostname(), p.Port)
			l := c.pickListener(dst, "virtualOutbound")
			label := "sim outbound " + host
			sim(label+" plaintext", c.simulate(l, plainConn(dst, host)))
			sim(label+" app-tls", c.simulate(l, appTLSConn(dst, s.Hostname())))
		}
		if eps := b.Mesh.Endpoints(s); len(eps) > 0 {
			dst := netip.AddrPortFrom(b.Addrs[eps[0].ID()], undeclaredPort)
			l := c.pickListener(dst, "virtualOutbound")
			label := fmt.Sprintf("sim outbound %s:%d (undeclared)", eps[0].ID(), undeclaredPort)
			sim(label+" plaintext", c.simulate(l, plainConn(dst, "x")))
			sim(label+" app-tls", c.simulate(l, appTLSConn(dst, "x")))
		}
	}
	return out
}

func (c *config) listener(name string) *listener.Listener {
	for _, l := range c.res.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	return nil
}
