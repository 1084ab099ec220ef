package translate

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/mesh"
)

func vsName(vs *networking.VirtualService) string {
	return fmt.Sprintf("VirtualService %s/%s", vs.Namespace, vs.Name)
}

// httpRoutes converts a VirtualService's http block for a listener port and
// gateway ("mesh" for sidecars) (pilot/pkg/networking/core/route/route.go,
// BuildHTTPRoutesForVirtualService / translateRoute). sourceLabels are the
// labels of the proxy that routes, for match.sourceLabels.
//
// isTLS says the routes serve a server with TLS settings (a gateway's), for
// the scheme of a redirect with a port (route.go, ApplyRedirect).
func (b *builder) httpRoutes(vs *networking.VirtualService, port uint32, gateway string, sourceLabels map[string]string, isTLS bool) []*route.Route {
	res := vsName(vs)
	var out []*route.Route
	for i, hr := range vs.Spec.GetHttp() {
		path := fmt.Sprintf("spec.http[%d]", i)
		b.checkHTTPRoute(res, path, hr)
		act, reqAdd, respAdd, reqRm, respRm := b.httpAction(vs, path, hr, port, isTLS)
		if act == nil {
			continue
		}
		mk := func(name string, rm *route.RouteMatch) *route.Route {
			r := &route.Route{Name: name, Match: rm, RequestHeadersToAdd: reqAdd, ResponseHeadersToAdd: respAdd, RequestHeadersToRemove: reqRm, ResponseHeadersToRemove: respRm,
				TypedPerFilterConfig: routeFilterConfigs(hr)}
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
			if !mesh.MatchGateways(m.GetGateways(), vs.Namespace, gateway) {
				continue
			}
			if len(m.GetSourceLabels()) > 0 && !subsetMatches(m.GetSourceLabels(), sourceLabels) {
				continue
			}
			// sourceNamespace: the routing proxy's namespace (route.go, sourceMatchHTTP).
			if m.GetSourceNamespace() != "" && m.GetSourceNamespace() != b.proxy.Namespace {
				continue
			}
			r := mk(routeName(hr, i, j), b.routeMatch(m))
			r.StatPrefix = m.GetStatPrefix() // route.go, TranslateRoute
			out = append(out, r)
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
	// Every other field is translated; delegate (a VirtualService
	// included from another) changes which routes exist and is not modelled.
	for _, f := range []field{
		{hr.GetDelegate() != nil, "delegate"},
	} {
		if f.set {
			b.unsupported(res, path+"."+f.name)
		}
	}
	if len(hr.GetRoute()) == 0 && hr.GetRedirect() == nil && hr.GetDirectResponse() == nil {
		b.fail(fmt.Errorf("%s: %s needs route, redirect or directResponse", res, path))
	}
}

// routeMatch (route.go, TranslateRouteMatch): uri, headers and
// withoutHeaders (inverted), method, authority, scheme, query parameters.
func (b *builder) routeMatch(m *networkingapi.HTTPMatchRequest) *route.RouteMatch {
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
	for _, name := range sortedKeys(m.GetWithoutHeaders()) {
		sm := m.GetWithoutHeaders()[name]
		hm := headerMatcher(name, sm)
		hm.InvertMatch = true
		// treat_missing_header_as_empty conflicts with present_match.
		hm.TreatMissingHeaderAsEmpty = !hm.GetPresentMatch()
		rm.Headers = append(rm.Headers, hm)
	}
	slices.SortStableFunc(rm.Headers, func(a, b *route.HeaderMatcher) int { return strings.Compare(a.Name, b.Name) })
	for _, hm := range []struct {
		name string
		sm   *networkingapi.StringMatch
	}{{":method", m.GetMethod()}, {":authority", m.GetAuthority()}, {":scheme", m.GetScheme()}} {
		if hm.sm != nil {
			rm.Headers = append(rm.Headers, headerMatcher(hm.name, hm.sm))
		}
	}
	for _, name := range sortedKeys(m.GetQueryParams()) {
		qm := &route.QueryParameterMatcher{Name: name}
		if sm := stringMatcher(m.GetQueryParams()[name]); sm != nil {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_StringMatch{StringMatch: sm}
		} else {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		}
		rm.QueryParameters = append(rm.QueryParameters, qm)
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
func (b *builder) httpAction(vs *networking.VirtualService, path string, hr *networkingapi.HTTPRoute, port uint32, isTLS bool) (action any, reqAdd, respAdd []*core.HeaderValueOption, reqRm, respRm []string) {
	if h := hr.GetHeaders(); h != nil {
		reqAdd, reqRm = headerOps(h.GetRequest())
		respAdd, respRm = headerOps(h.GetResponse())
	}
	if r := hr.GetRedirect(); r != nil {
		return &route.Route_Redirect{Redirect: redirectAction(r, port, isTLS)}, reqAdd, respAdd, reqRm, respRm
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
		ra.RetryPolicy = retryPolicy(r)
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
	ra.RequestMirrorPolicies = b.mirrorPolicies(func(p string, d *networkingapi.Destination) string {
		return b.destinationCluster(vs, p, d, port)
	}, path, hr)
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
		// A consistent-hash DestinationRule hashes on its key for a
		// single destination (route.go, applyHTTPRouteDestination).
		if hp := b.hashPolicy(vs, hr.GetRoute()[0].GetDestination(), port); hp != nil {
			ra.HashPolicy = []*route.RouteAction_HashPolicy{hp}
		}
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

// redirectAction (route.go, ApplyRedirect): authority, path or prefix,
// scheme, port (derivePort FROM_REQUEST_PORT is the listener port; a
// scheme's default port is left out) and code (default 301).
func redirectAction(r *networkingapi.HTTPRedirect, port uint32, isTLS bool) *route.RedirectAction {
	ra := &route.RedirectAction{HostRedirect: r.GetAuthority(), ResponseCode: redirectCode(r.GetRedirectCode())}
	if r.GetPrefixRewrite() != "" {
		ra.PathRewriteSpecifier = &route.RedirectAction_PrefixRewrite{PrefixRewrite: r.GetPrefixRewrite()}
	} else if r.GetUri() != "" {
		ra.PathRewriteSpecifier = &route.RedirectAction_PathRedirect{PathRedirect: r.GetUri()}
	}
	if r.GetScheme() != "" {
		ra.SchemeRewriteSpecifier = &route.RedirectAction_SchemeRedirect{SchemeRedirect: r.GetScheme()}
	}
	if r.GetRedirectPort() != nil {
		switch rp := r.GetRedirectPort().(type) {
		case *networkingapi.HTTPRedirect_DerivePort:
			if rp.DerivePort == networkingapi.HTTPRedirect_FROM_REQUEST_PORT {
				ra.PortRedirect = port
			}
		case *networkingapi.HTTPRedirect_Port:
			ra.PortRedirect = rp.Port
		}
		scheme := r.GetScheme()
		if scheme == "" {
			scheme = "http"
			if isTLS {
				scheme = "https"
			}
		}
		if (ra.PortRedirect == 80 && scheme == "http") || (ra.PortRedirect == 443 && scheme == "https") {
			ra.PortRedirect = 0
		}
	}
	return ra
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

// retryPolicy (route/retry/retry.go, ConvertPolicy): attempts 0 disables
// retries; numbers in retryOn are retriable status codes; the previous-hosts
// predicate follows retryIgnorePreviousHosts; backoff is the base interval.
// retryRemoteLocalities has no effect in meshtls (no localities) and is
// accepted with a notice.
func retryPolicy(r *networkingapi.HTTPRetry) *route.RetryPolicy {
	if r.GetAttempts() <= 0 {
		return nil
	}
	p := defaultRetryPolicy()
	p.NumRetries = wrapperspb.UInt32(uint32(r.GetAttempts()))
	if r.GetRetryOn() != "" {
		var on []string
		p.RetriableStatusCodes = nil
		for _, part := range strings.Split(r.GetRetryOn(), ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if n, err := strconv.Atoi(part); err == nil && http.StatusText(n) != "" {
				p.RetriableStatusCodes = append(p.RetriableStatusCodes, uint32(n))
			} else {
				on = append(on, part)
			}
		}
		p.RetryOn = strings.Join(on, ",")
		if len(p.RetriableStatusCodes) > 0 && !strings.Contains(p.RetryOn, "retriable-status-codes") {
			p.RetryOn += ",retriable-status-codes"
		}
	}
	if r.GetPerTryTimeout() != nil {
		p.PerTryTimeout = durationpb.New(r.GetPerTryTimeout().AsDuration())
	}
	if v := r.GetRetryIgnorePreviousHosts(); v != nil && !v.GetValue() {
		p.RetryHostPredicate = nil
	}
	if r.GetBackoff() != nil {
		p.RetryBackOff = &route.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(r.GetBackoff().AsDuration())}
	}
	return p
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
	host, p := b.destinationHostPort(vs, d, port)
	name := OutboundClusterName(p, d.GetSubset(), host)
	b.decide(name, mesh.Decision{VirtualService: fmt.Sprintf("%s/%s %s", vs.Namespace, vs.Name, strings.TrimSuffix(path, ".destination"))})
	return name
}

// destinationHostPort resolves a destination's host and port (see
// destinationCluster).
func (b *builder) destinationHostPort(vs *networking.VirtualService, d *networkingapi.Destination, port uint32) (string, uint32) {
	host := d.GetHost()
	p := d.GetPort().GetNumber()
	if s, ok := b.m.ServiceByHost(host, vs.Namespace); ok {
		host = s.Hostname()
		if s.ExternalName != "" {
			// An alias routes to the cluster of the host it names, one
			// hop (route.go GetDestinationCluster).
			host = s.ExternalName
		}
		if p == 0 && len(s.Ports) == 1 && s.VisibleFrom(b.proxy.Namespace) {
			p = s.Ports[0].Port
		}
	} else if ports := b.targetPorts[host]; p == 0 && len(ports) == 1 {
		p = ports[0]
	}
	if p == 0 {
		p = port
	}
	return host, p
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
			if !mesh.MatchGateways(m.GetGateways(), vs.Namespace, gateway) {
				continue
			}
			applies = true
		}
		if !applies {
			continue
		}
		out := b.routeWeights(vs, path, tr.GetRoute(), port)
		if len(out) == 0 {
			b.fail(fmt.Errorf("%s: %s.route is empty; meshtls needs a route destination", res, path))
			return nil
		}
		return out
	}
	return nil
}
