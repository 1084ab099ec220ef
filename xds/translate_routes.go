package xds

import (
	"fmt"
	"slices"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

func vsName(vs *networking.VirtualService) string {
	return fmt.Sprintf("VirtualService %s/%s", vs.Namespace, vs.Name)
}

// httpRoutes converts a VirtualService's http block for a listener port and
// gateway ("mesh" for sidecars) (pilot/pkg/networking/core/route/route.go,
// BuildHTTPRoutesForVirtualService / translateRoute). sourceLabels are the
// labels of the proxy that routes, for match.sourceLabels.
func (b *builder) httpRoutes(vs *networking.VirtualService, port uint32, gateway string, sourceLabels map[string]string) []*route.Route {
	res := vsName(vs)
	var out []*route.Route
	for i, hr := range vs.Spec.GetHttp() {
		path := fmt.Sprintf("spec.http[%d]", i)
		b.checkHTTPRoute(res, path, hr)
		action := b.httpAction(vs, path, hr, port)
		if action == nil {
			continue
		}
		matches := hr.GetMatch()
		if len(matches) == 0 {
			out = append(out, &route.Route{
				Name:   routeName(hr, i, -1),
				Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: action,
			})
			continue
		}
		for j, m := range matches {
			// A match bound to another port, gateway or source does not
			// apply here (route.go, sourceMatchHTTP / port match).
			if m.GetPort() != 0 && m.GetPort() != port {
				continue
			}
			if len(m.GetGateways()) > 0 && !slices.Contains(m.GetGateways(), gateway) && !slices.Contains(m.GetGateways(), vs.Namespace+"/"+gateway) {
				continue
			}
			if len(m.GetSourceLabels()) > 0 && !subsetMatches(m.GetSourceLabels(), sourceLabels) {
				continue
			}
			rm := b.routeMatch(res, fmt.Sprintf("%s.match[%d]", path, j), m)
			out = append(out, &route.Route{Name: routeName(hr, i, j), Match: rm, Action: action})
		}
	}
	return out
}

func routeName(hr *networkingapi.HTTPRoute, i, j int) string {
	if hr.GetName() != "" {
		return hr.GetName()
	}
	if j < 0 {
		return fmt.Sprintf("http[%d]", i)
	}
	return fmt.Sprintf("http[%d].match[%d]", i, j)
}

func (b *builder) checkHTTPRoute(res, path string, hr *networkingapi.HTTPRoute) {
	type field struct {
		set  bool
		name string
	}
	for _, f := range []field{
		{hr.GetRedirect() != nil, "redirect"},
		{hr.GetDirectResponse() != nil, "directResponse"},
		{hr.GetDelegate() != nil, "delegate"},
		{hr.GetRewrite() != nil, "rewrite"},
		{hr.GetRetries() != nil, "retries"},
		{hr.GetFault() != nil, "fault"},
		{hr.GetMirror() != nil || len(hr.GetMirrors()) > 0 || hr.GetMirrorPercentage() != nil, "mirror"},
		{hr.GetCorsPolicy() != nil, "corsPolicy"},
		{hr.GetHeaders() != nil, "headers"},
	} {
		if f.set {
			b.unsupported(res, path+"."+f.name)
		}
	}
	if len(hr.GetRoute()) == 0 {
		b.fail(fmt.Errorf("%s: %s.route is empty; meshtls needs a route destination", res, path))
	}
}

func (b *builder) routeMatch(res, path string, m *networkingapi.HTTPMatchRequest) *route.RouteMatch {
	rm := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}
	if m.GetIgnoreUriCase() {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	switch u := m.GetUri().GetMatchType().(type) {
	case nil:
	case *networkingapi.StringMatch_Exact:
		rm.PathSpecifier = &route.RouteMatch_Path{Path: u.Exact}
	case *networkingapi.StringMatch_Prefix:
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networkingapi.StringMatch_Regex:
		rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: u.Regex}}
	}
	for _, name := range sortedKeys(m.GetHeaders()) {
		rm.Headers = append(rm.Headers, headerMatcher(name, m.GetHeaders()[name]))
	}
	for _, hm := range []struct {
		name string
		sm   *networkingapi.StringMatch
	}{{":method", m.GetMethod()}, {":authority", m.GetAuthority()}, {":scheme", m.GetScheme()}} {
		if hm.sm != nil {
			rm.Headers = append(rm.Headers, headerMatcher(hm.name, hm.sm))
		}
	}
	if len(m.GetQueryParams()) > 0 {
		b.unsupported(res, path+".queryParams")
	}
	if len(m.GetWithoutHeaders()) > 0 {
		b.unsupported(res, path+".withoutHeaders")
	}
	if m.GetSourceNamespace() != "" {
		b.unsupported(res, path+".sourceNamespace")
	}
	if m.GetStatPrefix() != "" {
		b.unsupported(res, path+".statPrefix")
	}
	return rm
}

// headerMatcher: exact, prefix, regex as Istio (route.go, translateHeaderMatch).
func headerMatcher(name string, sm *networkingapi.StringMatch) *route.HeaderMatcher {
	hm := &route.HeaderMatcher{Name: name}
	var s *matcher.StringMatcher
	switch v := sm.GetMatchType().(type) {
	case *networkingapi.StringMatch_Exact:
		s = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v.Exact}}
	case *networkingapi.StringMatch_Prefix:
		s = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v.Prefix}}
	case *networkingapi.StringMatch_Regex:
		s = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: v.Regex}}}
	default:
		// An empty match means the header must be present (route.go).
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
		return hm
	}
	hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: s}
	return hm
}

// httpAction: the destinations (weighted when several), timeout, Istio's
// default retries.
func (b *builder) httpAction(vs *networking.VirtualService, path string, hr *networkingapi.HTTPRoute, port uint32) *route.Route_Route {
	ra := &route.RouteAction{Timeout: durationpb.New(0), RetryPolicy: defaultRetryPolicy()}
	if hr.GetTimeout() != nil {
		ra.Timeout = durationpb.New(hr.GetTimeout().AsDuration())
	}
	var wcs []*route.WeightedCluster_ClusterWeight
	for j, d := range hr.GetRoute() {
		name := b.destinationCluster(vs, fmt.Sprintf("%s.route[%d].destination", path, j), d.GetDestination(), port)
		if d.GetHeaders() != nil {
			b.unsupported(vsName(vs), fmt.Sprintf("%s.route[%d].headers", path, j))
		}
		wcs = append(wcs, &route.WeightedCluster_ClusterWeight{Name: name, Weight: wrapperspb.UInt32(uint32(d.GetWeight()))})
	}
	switch len(wcs) {
	case 0:
		return nil
	case 1:
		ra.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: wcs[0].Name}
	default:
		ra.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: wcs}}
	}
	return &route.Route_Route{Route: ra}
}

// destinationCluster names the cluster of a route destination: the host
// resolved in the VirtualService's namespace, the port given or, when the
// service has one port, that one, else the listener's port
// (route.go, GetDestinationCluster). A host or subset nobody defines yields a
// cluster name that does not exist: Envoy answers 503 NC, as Istio's does.
func (b *builder) destinationCluster(vs *networking.VirtualService, path string, d *networkingapi.Destination, port uint32) string {
	if d == nil {
		b.fail(fmt.Errorf("%s: %s is missing", vsName(vs), path))
		return BlackHoleCluster
	}
	host := d.GetHost()
	p := d.GetPort().GetNumber()
	if s, ok := b.m.ServiceByHost(host, vs.Namespace); ok {
		host = s.Hostname()
		if p == 0 && len(s.Ports) == 1 {
			p = s.Ports[0].Port
		}
	} else if ports := b.targetPorts[host]; p == 0 && len(ports) == 1 {
		p = ports[0]
	}
	if p == 0 {
		p = port
	}
	return OutboundClusterName(p, d.GetSubset(), host)
}

// tcpRoute is the first tcp route of vs that applies to port and gateway
// (pilot/pkg/networking/core/tcp_route.go? networking/core/networkfilter.go,
// buildOutboundNetworkFilters); nil when none applies.
func (b *builder) tcpRoute(vs *networking.VirtualService, port uint32, gateway string) []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight {
	res := vsName(vs)
	for i, tr := range vs.Spec.GetTcp() {
		path := fmt.Sprintf("spec.tcp[%d]", i)
		applies := len(tr.GetMatch()) == 0
		for j, m := range tr.GetMatch() {
			mp := fmt.Sprintf("%s.match[%d]", path, j)
			if len(m.GetDestinationSubnets()) > 0 {
				b.unsupported(res, mp+".destinationSubnets")
			}
			if len(m.GetSourceLabels()) > 0 {
				b.unsupported(res, mp+".sourceLabels")
			}
			if m.GetSourceNamespace() != "" {
				b.unsupported(res, mp+".sourceNamespace")
			}
			if m.GetPort() != 0 && m.GetPort() != port {
				continue
			}
			if len(m.GetGateways()) > 0 && !slices.Contains(m.GetGateways(), gateway) && !slices.Contains(m.GetGateways(), vs.Namespace+"/"+gateway) {
				continue
			}
			applies = true
		}
		if !applies {
			continue
		}
		var out []*tcpproxy.TcpProxy_WeightedCluster_ClusterWeight
		for j, d := range tr.GetRoute() {
			name := b.destinationCluster(vs, fmt.Sprintf("%s.route[%d].destination", path, j), d.GetDestination(), port)
			w := uint32(d.GetWeight())
			if w == 0 {
				w = 1
			}
			out = append(out, &tcpproxy.TcpProxy_WeightedCluster_ClusterWeight{Name: name, Weight: w})
		}
		if len(out) == 0 {
			b.fail(fmt.Errorf("%s: %s.route is empty; meshtls needs a route destination", res, path))
			return nil
		}
		return out
	}
	return nil
}
