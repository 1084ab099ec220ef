package mesh

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
)

// OutsideClient is the workload Explore adds to call gateways from outside
// the mesh (a plain pod, as a browser or curl on the internet would be).
const OutsideClient = "meshtls-explore/outside"

// Explore adds the calls that find out what the bundle does, as Checks
// without expectations (marked Explored):
//   - from every client workload (the first pod of each Deployment or other
//     controller; gateways are not clients) to every port of every Service
//     that has endpoints, in the protocol the port declares (HTTP class and
//     undeclared ports: http; HTTPS: https; TLS: tls; other TCP: tcp); a
//     workload does not call its own Service, and calls into a gateway's
//     Service are left out (from inside the mesh gateways are reached by
//     their hosts, through the gateway itself);
//   - from an outside client to every host and port of every Gateway server,
//     via the gateway's pod (http, or https with the server's host as SNI
//     for TLS servers, presenting the client certificate to MUTUAL ones);
//     the harness dials the port the gateway's Service sends the server's
//     port to (GatewayPort), as a load balancer would.
//
// It returns a notice for each Service or server it could not call.
func (m *Mesh) Explore() []Problem {
	var notes []Problem
	note := func(src Source, kind, name, msg string) {
		notes = append(notes, Problem{Source: src, Kind: kind, Name: name, Message: msg})
	}
	var clients []*Workload
	seen := map[string]bool{}
	for _, w := range m.Workloads {
		if w.Gateway || w.External {
			continue
		}
		if w.Controller != "" {
			if seen[w.Controller] {
				continue
			}
			seen[w.Controller] = true
		}
		clients = append(clients, w)
	}
	existing := map[string]bool{}
	for _, c := range m.Checks {
		existing[c.Namespace+"/"+c.Name] = true
	}
	add := func(c *Check) {
		c.Explored = true
		c.Namespace = "default"
		c.Name = "explore: " + c.From + " → " + c.Dest
		if !existing[c.Namespace+"/"+c.Name] {
			existing[c.Namespace+"/"+c.Name] = true
			m.Checks = append(m.Checks, c)
		}
	}
	for _, s := range m.Services {
		eps := m.Endpoints(s)
		if len(eps) == 0 {
			note(s.Source, "Service", s.Namespace+"/"+s.Name, "not explored: it selects no pod in the bundle")
			continue
		}
		if eps[0].Gateway {
			continue // reached through its Gateway servers below
		}
		for _, p := range s.Ports {
			scheme := "http"
			switch proto := PortProtocol(p.Name, p.AppProtocol, p.Port); {
			case proto == ProtoHTTPS:
				scheme = "https"
			case proto == ProtoTLS:
				scheme = "tls"
			case proto.IsTCP():
				scheme = "tcp"
			}
			url := fmt.Sprintf("%s://%s:%d", scheme, s.Hostname(), p.Port)
			if scheme == "http" || scheme == "https" {
				url += "/"
			}
			dest := fmt.Sprintf("%s.%s:%d", s.Name, s.Namespace, p.Port)
			for _, w := range clients {
				if isEndpoint(eps, w) {
					continue
				}
				c := &Check{From: w.ID(), To: url, Dest: dest, Source: s.Source}
				if scheme == "https" || scheme == "tls" {
					c.TLS = &CheckTLS{CA: append([]string(nil), DefaultCheckCAs...)}
				}
				add(c)
			}
		}
	}
	added := false
	for _, gw := range m.Workloads {
		if !gw.Gateway || (gw.Controller != "" && !strings.HasSuffix(gw.Name, "-0")) {
			continue
		}
		for _, gs := range m.GatewayServers(gw) {
			srv := gs.Server
			key := "Gateway/" + gs.Gateway.Namespace + "/" + gs.Gateway.Name
			for _, h := range srv.GetHosts() {
				if _, host, ok := strings.Cut(h, "/"); ok {
					h = host
				}
				if h == "*" {
					h = "explore.example.com" // any name matches
				}
				h = strings.Replace(h, "*", "explore", 1)
				c, ok := gatewayCall(srv, h)
				if !ok {
					note(m.Sources[key], "Gateway", gs.Gateway.Namespace+"/"+gs.Gateway.Name, fmt.Sprintf("server port %d (%s) not explored: meshtls has no client for it", srv.GetPort().GetNumber(), srv.GetPort().GetProtocol()))
					continue
				}
				c.From, c.Via, c.Source = OutsideClient, gw.ID(), m.Sources[key]
				c.Dest = net.JoinHostPort(h, strconv.Itoa(int(srv.GetPort().GetNumber()))) + " via " + gw.ID()
				add(c)
				added = true
			}
		}
	}
	if added {
		ns, name := splitRef(OutsideClient)
		if _, ok := m.Workload(OutsideClient); !ok {
			m.Workloads = append(m.Workloads, &Workload{Name: name, Namespace: ns, Kind: "Workload", ServiceAccount: name,
				External: true, Labels: map[string]string{"meshtls.dev/explore": "outside"}})
		}
	}
	return notes
}

func isEndpoint(eps []*Workload, w *Workload) bool {
	for _, e := range eps {
		if e == w {
			return true
		}
	}
	return false
}

// gatewayCall is the outside client's call to one gateway server host.
func gatewayCall(srv *networkingapi.Server, host string) (*Check, bool) {
	port := srv.GetPort().GetNumber()
	proto := parseProtocol(srv.GetPort().GetProtocol())
	switch {
	case proto.IsHTTP():
		return &Check{To: fmt.Sprintf("http://%s:%d/", host, port)}, true
	case proto == ProtoHTTPS || proto == ProtoTLS:
		c := &Check{To: fmt.Sprintf("https://%s:%d/", host, port), TLS: &CheckTLS{CA: append([]string(nil), DefaultCheckCAs...)}}
		if srv.GetTls().GetMode() == networkingapi.ServerTLSSettings_MUTUAL {
			c.TLS.ClientCert = "client"
		}
		if proto == ProtoTLS {
			c.To = fmt.Sprintf("tls://%s:%d", host, port)
		}
		return c, true
	case proto.IsTCP():
		return &Check{To: fmt.Sprintf("tcp://%s:%d", host, port)}, true
	}
	return nil, false
}
