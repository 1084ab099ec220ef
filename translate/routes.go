package translate

import (
	"fmt"
	"slices"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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
		act, reqAdd, respAdd, reqRm, respRm := b.httpAction(vs, path, hr, port)
		if act == nil {
			continue
		}
		mk := func(name string, rm *route.RouteMatch) *route.Route {
			r := &route.Route{Name: name, Match: rm, RequestHeadersToAdd: reqAdd, ResponseHeadersToAdd: respAdd, RequestHeadersToRemove: reqRm, ResponseHeadersToRemove: respRm}
			switch a := act.(type) {
			case *route.Route_Route:
				r.Action = a
			case *route.Route_Redirect:
				r.Action = a
			case *route.Route_DirectResponse:
				r.Action = a
			}
			return r
		}
		matches := hr.GetMatch()
		if len(matches) == 0 {
			out = append(out, mk(routeName(hr, i, -1), &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}))
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
			out = append(out, mk(routeName(hr, i, j), rm))
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
		{hr.GetDelegate() != nil, "delegate"},
		{hr.GetFault() != nil, "fault"},
		{hr.GetMirror() != nil || len(hr.GetMirrors()) > 0 || hr.GetMirrorPercentage() != nil, "mirror"},
		{hr.GetCorsPolicy() != nil, "corsPolicy"},
		{hr.GetRedirect().GetDerivePort() != networkingapi.HTTPRedirect_FROM_PROTOCOL_DEFAULT, "redirect.derivePort"},
		{hr.GetRetries().GetRetryRemoteLocalities() != nil, "retries.retryRemoteLocalities"},
		{hr.GetRetries().GetBackoff() != nil, "retries.backoff"},
	} {
		if f.set {
			b.unsupported(res, path+"."+f.name)
		}
	}
	if len(hr.GetRoute()) == 0 && hr.GetRedirect() == nil && hr.GetDirectResponse() == nil {
		b.fail(fmt.Errorf("%s: %s needs route, redirect or directResponse", res, path))
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

// httpAction: redirect, direct response, or the destinations (weighted
// when several) with timeout, retries, rewrite and header edits
// (pilot/pkg/networking/core/route/route.go, translateRoute,
// applyHTTPRouteDestination, translateRetryPolicy in route/retry/retry.go).
func (b *builder) httpAction(vs *networking.VirtualService, path string, hr *networkingapi.HTTPRoute, port uint32) (action any, reqAdd, respAdd []*core.HeaderValueOption, reqRm, respRm []string) {
	if h := hr.GetHeaders(); h != nil {
		reqAdd, reqRm = headerOps(h.GetRequest())
		respAdd, respRm = headerOps(h.GetResponse())
	}
	if r := hr.GetRedirect(); r != nil {
		ra := &route.RedirectAction{HostRedirect: r.GetAuthority(), ResponseCode: redirectCode(r.GetRedirectCode())}
		if r.GetUri() != "" {
			ra.PathRewriteSpecifier = &route.RedirectAction_PathRedirect{PathRedirect: r.GetUri()}
		}
		if r.GetScheme() != "" {
			ra.SchemeRewriteSpecifier = &route.RedirectAction_SchemeRedirect{SchemeRedirect: r.GetScheme()}
		}
		if r.GetPort() != 0 {
			ra.PortRedirect = r.GetPort()
		}
		return &route.Route_Redirect{Redirect: ra}, reqAdd, respAdd, reqRm, respRm
	}
	if d := hr.GetDirectResponse(); d != nil {
		dr := &route.DirectResponseAction{Status: d.GetStatus()}
		switch body := d.GetBody().GetSpecifier().(type) {
		case *networkingapi.HTTPBody_String_:
			dr.Body = &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: body.String_}}
		case *networkingapi.HTTPBody_Bytes:
			dr.Body = &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: body.Bytes}}
		}
		return &route.Route_DirectResponse{DirectResponse: dr}, reqAdd, respAdd, reqRm, respRm
	}
	ra := &route.RouteAction{Timeout: durationpb.New(0), RetryPolicy: defaultRetryPolicy()}
	if hr.GetTimeout() != nil {
		ra.Timeout = durationpb.New(hr.GetTimeout().AsDuration())
	}
	if r := hr.GetRetries(); r != nil {
		// attempts 0 disables retries (retry.go, ConvertPolicy).
		if r.GetAttempts() == 0 {
			ra.RetryPolicy = nil
		} else {
			ra.RetryPolicy.NumRetries = wrapperspb.UInt32(uint32(r.GetAttempts()))
			if r.GetRetryOn() != "" {
				ra.RetryPolicy.RetryOn = r.GetRetryOn()
			}
			if r.GetPerTryTimeout() != nil {
				ra.RetryPolicy.PerTryTimeout = durationpb.New(r.GetPerTryTimeout().AsDuration())
			}
		}
	}
	if rw := hr.GetRewrite(); rw != nil {
		if rw.GetUri() != "" {
			ra.PrefixRewrite = rw.GetUri()
		}
		if rx := rw.GetUriRegexRewrite(); rx != nil {
			ra.RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: &matcher.RegexMatcher{Regex: rx.GetMatch()}, Substitution: rx.GetRewrite()}
		}
		if rw.GetAuthority() != "" {
			ra.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.GetAuthority()}
		}
	}
	var wcs []*route.WeightedCluster_ClusterWeight
	for j, d := range hr.GetRoute() {
		name := b.destinationCluster(vs, fmt.Sprintf("%s.route[%d].destination", path, j), d.GetDestination(), port)
		wc := &route.WeightedCluster_ClusterWeight{Name: name, Weight: wrapperspb.UInt32(uint32(d.GetWeight()))}
		if h := d.GetHeaders(); h != nil {
			wc.RequestHeadersToAdd, wc.RequestHeadersToRemove = headerOps(h.GetRequest())
			wc.ResponseHeadersToAdd, wc.ResponseHeadersToRemove = headerOps(h.GetResponse())
		}
		wcs = append(wcs, wc)
	}
	switch {
	case len(wcs) == 0:
		return nil, nil, nil, nil, nil
	case len(wcs) == 1:
		ra.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: wcs[0].Name}
		// Destination-level header edits apply to the route (route.go).
		reqAdd = append(reqAdd, wcs[0].RequestHeadersToAdd...)
		respAdd = append(respAdd, wcs[0].ResponseHeadersToAdd...)
		reqRm = append(reqRm, wcs[0].RequestHeadersToRemove...)
		respRm = append(respRm, wcs[0].ResponseHeadersToRemove...)
	default:
		ra.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: wcs}}
	}
	return &route.Route_Route{Route: ra}, reqAdd, respAdd, reqRm, respRm
}

// headerOps: set overwrites, add appends, remove removes (route.go, translateHeadersOperations).
func headerOps(h *networkingapi.Headers_HeaderOperations) ([]*core.HeaderValueOption, []string) {
	if h == nil {
		return nil, nil
	}
	var add []*core.HeaderValueOption
	for _, k := range sortedKeys(h.GetSet()) {
		add = append(add, &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: h.GetSet()[k]}, AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	}
	for _, k := range sortedKeys(h.GetAdd()) {
		add = append(add, &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: h.GetAdd()[k]}, AppendAction: core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD})
	}
	return add, h.GetRemove()
}

// redirectCode maps Istio's redirectCode (default 301) to Envoy's enum.
func redirectCode(code uint32) route.RedirectAction_RedirectResponseCode {
	switch code {
	case 302:
		return route.RedirectAction_FOUND
	case 303:
		return route.RedirectAction_SEE_OTHER
	case 307:
		return route.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		return route.RedirectAction_PERMANENT_REDIRECT
	}
	return route.RedirectAction_MOVED_PERMANENTLY
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
// (pilot/pkg/networking/core/tls.go, buildSidecarOutboundTCPTLSFilterChainOpts;
// networkfilter.go, buildOutboundNetworkFilters); nil when none applies.
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
