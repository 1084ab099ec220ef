package crosscheck

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshtls/meshtls/translate"
)

// Line is one fact of a proxy's config. Behavioural lines say what a
// connection meets (they fail the comparison when they differ);
// structural lines say how the config is written (reported only).
type Line struct {
	Key       string
	Value     string
	Behaviour bool
}

// config wraps one side's resources with indexes.
type config struct {
	res       *translate.Resources
	clusters  map[string]*cluster.Cluster
	routes    map[string]*route.RouteConfiguration
	endpoints map[string]*endpoint.ClusterLoadAssignment
	names     map[netip.Addr]string // workload IP -> workload ID, for endpoint names
}

func newConfig(res *translate.Resources, names map[netip.Addr]string) *config {
	c := &config{res: res, names: names,
		clusters: map[string]*cluster.Cluster{}, routes: map[string]*route.RouteConfiguration{}, endpoints: map[string]*endpoint.ClusterLoadAssignment{}}
	for _, x := range res.Clusters {
		c.clusters[x.GetName()] = x
		if x.GetLoadAssignment() != nil {
			c.endpoints[x.GetName()] = x.GetLoadAssignment()
		}
	}
	for _, x := range res.Endpoints {
		c.endpoints[x.GetClusterName()] = x
	}
	for _, x := range res.Routes {
		c.routes[x.GetName()] = x
	}
	return c
}

// clusterLines: per outbound cluster, its transport sockets (structural)
// and what each endpoint gets (behavioural).
func (c *config) clusterLines() []Line {
	var out []Line
	for _, name := range sortedKeys(c.clusters) {
		if !strings.HasPrefix(name, "outbound|") {
			continue
		}
		cl := c.clusters[name]
		var socks []string
		for _, m := range cl.GetTransportSocketMatches() {
			socks = append(socks, fmt.Sprintf("{match %s: %s}", structString(m.GetMatch()), socketSummary(m.GetTransportSocket(), nil)))
		}
		if cl.GetTransportSocket() != nil || len(socks) == 0 {
			socks = append(socks, "{default: "+socketSummary(cl.GetTransportSocket(), nil)+"}")
		}
		out = append(out, Line{Key: "cluster " + name + " sockets", Value: strings.Join(socks, " ")})
		for _, ep := range c.endpointsOf(name) {
			out = append(out,
				Line{Key: "cluster " + name + " endpoint " + ep.name, Value: socketSummary(socketFor(cl, ep.md), nil), Behaviour: true},
				Line{Key: "cluster " + name + " endpoint " + ep.name + " tlsMode", Value: ep.tlsMode})
		}
	}
	return out
}

type ep struct {
	name    string
	tlsMode string
	md      *structpb.Struct
}

// endpointsOf lists a cluster's endpoints by workload name (or address),
// sorted.
func (c *config) endpointsOf(cluster string) []ep {
	var out []ep
	for _, lep := range c.endpoints[cluster].GetEndpoints() {
		for _, le := range lep.GetLbEndpoints() {
			sa := le.GetEndpoint().GetAddress().GetSocketAddress()
			name := sa.GetAddress()
			if a, err := netip.ParseAddr(name); err == nil && c.names[a] != "" {
				name = c.names[a]
			}
			name = fmt.Sprintf("%s:%d", name, sa.GetPortValue())
			md := le.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
			mode := "none"
			if v := md.GetFields()["tlsMode"]; v != nil {
				mode = v.GetStringValue()
			}
			out = append(out, ep{name: name, tlsMode: mode, md: md})
		}
	}
	slices.SortFunc(out, func(a, b ep) int { return cmp.Compare(a.name, b.name) })
	return out
}

// socketFor is the transport socket Envoy picks for an endpoint: the first
// transport_socket_matches entry whose match is a subset of the endpoint's
// envoy.transport_socket_match metadata, else the cluster's socket.
func socketFor(cl *cluster.Cluster, md *structpb.Struct) *core.TransportSocket {
	for _, m := range cl.GetTransportSocketMatches() {
		ok := true
		for k, v := range m.GetMatch().GetFields() {
			if got := md.GetFields()[k]; got == nil || got.GetStringValue() != v.GetStringValue() {
				ok = false
				break
			}
		}
		if ok {
			return m.GetTransportSocket()
		}
	}
	return cl.GetTransportSocket()
}

// socketSummary describes an upstream transport socket; alpn overrides
// the context's ALPN when not nil.
func socketSummary(ts *core.TransportSocket, alpn []string) string {
	if ts == nil || ts.GetName() == "envoy.transport_sockets.raw_buffer" || strings.HasSuffix(ts.GetTypedConfig().GetTypeUrl(), ".RawBuffer") {
		return "plaintext"
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		return "socket " + ts.GetTypedConfig().GetTypeUrl()
	}
	return upstreamTLS(u, alpn)
}

func structString(s *structpb.Struct) string {
	var kv []string
	for _, k := range sortedKeys(s.GetFields()) {
		kv = append(kv, k+"="+s.GetFields()[k].GetStringValue())
	}
	if len(kv) == 0 {
		return "any"
	}
	return strings.Join(kv, ",")
}

// chainLines describes each filter chain of a listener: its match and
// what it does (structural: chains may be split or merged differently for
// the same behaviour).
func (c *config) chainLines(key string, l *listener.Listener) []Line {
	var out []Line
	chains := l.GetFilterChains()
	for _, fc := range chains {
		out = append(out, Line{Key: key + " chain " + matchString(fc.GetFilterChainMatch()), Value: c.chainAction(fc, nil)})
	}
	if d := l.GetDefaultFilterChain(); d != nil {
		out = append(out, Line{Key: key + " default chain", Value: c.chainAction(d, nil)})
	}
	// Two chains with the same match (both configs avoid it, Envoy rejects
	// it): keep each, numbered.
	seen := map[string]int{}
	for i := range out {
		seen[out[i].Key]++
		if n := seen[out[i].Key]; n > 1 {
			out[i].Key += fmt.Sprintf(" #%d", n)
		}
	}
	return out
}

func matchString(m *listener.FilterChainMatch) string {
	var p []string
	if m.GetDestinationPort() != nil {
		p = append(p, fmt.Sprintf("port=%d", m.GetDestinationPort().GetValue()))
	}
	var ranges []string
	for _, r := range m.GetPrefixRanges() {
		ranges = append(ranges, fmt.Sprintf("%s/%d", r.GetAddressPrefix(), r.GetPrefixLen().GetValue()))
	}
	if len(ranges) > 0 {
		slices.Sort(ranges)
		p = append(p, "dst="+list(ranges))
	}
	if len(m.GetServerNames()) > 0 {
		s := slices.Clone(m.GetServerNames())
		slices.Sort(s)
		p = append(p, "sni="+list(s))
	}
	if m.GetTransportProtocol() != "" {
		p = append(p, "transport="+m.GetTransportProtocol())
	}
	if len(m.GetApplicationProtocols()) > 0 {
		s := slices.Clone(m.GetApplicationProtocols())
		slices.Sort(s)
		p = append(p, "alpn="+list(s))
	}
	if len(p) == 0 {
		return "{any}"
	}
	return "{" + strings.Join(p, " ") + "}"
}

func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K {
	return slices.Sorted(maps.Keys(m))
}
