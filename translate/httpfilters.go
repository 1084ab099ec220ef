package translate

import (
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	cors "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	envoytype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
)

// VirtualService fault injection and CORS: Istio puts Envoy's cors and
// fault HTTP filters in every outbound and gateway HTTP connection manager,
// inert until a route carries a per-route config
// (pilot/pkg/networking/core/listener_builder.go, xdsfilters.Cors and
// xdsfilters.Fault; route/route.go, TranslateRoute, TranslateFault,
// TranslateCORSPolicy).
const (
	faultFilterName = "envoy.filters.http.fault"
	corsFilterName  = "envoy.filters.http.cors"
)

// routeHTTPFilters is the filter chain of an HCM whose routes come from
// VirtualServices: Istio's ALPN override, CORS, fault, router.
func routeHTTPFilters() []*hcm.HttpFilter {
	return []*hcm.HttpFilter{
		alpnHTTPFilter(),
		{Name: corsFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&cors.Cors{})}},
		{Name: faultFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&fault.HTTPFault{})}},
		routerFilter(),
	}
}

// routeFilterConfigs is a route's per-filter config for its fault and
// corsPolicy; nil when it has neither.
func routeFilterConfigs(hr *networkingapi.HTTPRoute) map[string]*anypb.Any {
	var out map[string]*anypb.Any
	set := func(name string, a *anypb.Any) {
		if out == nil {
			out = map[string]*anypb.Any{}
		}
		out[name] = a
	}
	if f := translateFault(hr.GetFault()); f != nil {
		set(faultFilterName, mustAny(f))
	}
	if c := translateCORS(hr.GetCorsPolicy()); c != nil {
		set(corsFilterName, mustAny(c))
	}
	return out
}

// translateFault (route.go, TranslateFault): a fixed delay and an HTTP or
// gRPC abort, each with its percentage (the deprecated integer percent for
// delays); nil when neither is set.
func translateFault(in *networkingapi.HTTPFaultInjection) *fault.HTTPFault {
	if in == nil {
		return nil
	}
	out := &fault.HTTPFault{}
	if d := in.GetDelay(); d != nil && d.GetFixedDelay() != nil {
		out.Delay = &faultcommon.FaultDelay{FaultDelaySecifier: &faultcommon.FaultDelay_FixedDelay{FixedDelay: d.GetFixedDelay()}}
		if d.GetPercentage() != nil {
			out.Delay.Percentage = millionths(d.GetPercentage().GetValue())
		} else {
			//lint:ignore SA1019 Istio still honours the deprecated percent
			out.Delay.Percentage = &envoytype.FractionalPercent{Numerator: uint32(d.GetPercent()), Denominator: envoytype.FractionalPercent_HUNDRED}
		}
	}
	if a := in.GetAbort(); a != nil {
		out.Abort = &fault.FaultAbort{}
		if a.GetPercentage() != nil {
			out.Abort.Percentage = millionths(a.GetPercentage().GetValue())
		}
		switch e := a.GetErrorType().(type) {
		case *networkingapi.HTTPFaultInjection_Abort_HttpStatus:
			out.Abort.ErrorType = &fault.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
		case *networkingapi.HTTPFaultInjection_Abort_GrpcStatus:
			code, ok := grpcCodes[e.GrpcStatus]
			if !ok {
				code = 2 // UNKNOWN
			}
			out.Abort.ErrorType = &fault.FaultAbort_GrpcStatus{GrpcStatus: code}
		default:
			out.Abort = nil
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

// grpcCodes are the gRPC status names Istio accepts for abort.grpcStatus
// (pkg/config/validation, grpc.SupportedGRPCStatus).
var grpcCodes = map[string]uint32{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// millionths is Istio's Percent as an Envoy fraction per million
// (route.go, translatePercentToFractionalPercent).
func millionths(pct float64) *envoytype.FractionalPercent {
	return &envoytype.FractionalPercent{Numerator: uint32(pct * 10000), Denominator: envoytype.FractionalPercent_MILLION}
}

// translateCORS (route.go, TranslateCORSPolicy): origins as string
// matchers, lists joined with commas, max age in seconds, preflights that
// match no origin forwarded unless unmatchedPreflights is IGNORE.
func translateCORS(in *networkingapi.CorsPolicy) *cors.CorsPolicy {
	if in == nil {
		return nil
	}
	out := &cors.CorsPolicy{
		ForwardNotMatchingPreflights: wrapperspb.Bool(in.GetUnmatchedPreflights() != networkingapi.CorsPolicy_IGNORE),
		FilterEnabled:                &core.RuntimeFractionalPercent{DefaultValue: &envoytype.FractionalPercent{Numerator: 100, Denominator: envoytype.FractionalPercent_HUNDRED}},
		AllowCredentials:             in.GetAllowCredentials(),
		AllowHeaders:                 strings.Join(in.GetAllowHeaders(), ","),
		AllowMethods:                 strings.Join(in.GetAllowMethods(), ","),
		ExposeHeaders:                strings.Join(in.GetExposeHeaders(), ","),
	}
	//lint:ignore SA1019 Istio still honours the deprecated allowOrigin
	legacyOrigins := in.GetAllowOrigin()
	if len(in.GetAllowOrigins()) > 0 {
		for _, o := range in.GetAllowOrigins() {
			if m := stringMatcher(o); m != nil {
				out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, m)
			}
		}
	} else if len(legacyOrigins) > 0 {
		for _, s := range legacyOrigins {
			out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}})
		}
	}
	if in.GetMaxAge() != nil {
		out.MaxAge = strconv.FormatInt(in.GetMaxAge().GetSeconds(), 10)
	}
	return out
}

// stringMatcher: exact, prefix or regex (pilot/pkg/networking/util, ConvertToEnvoyMatch).
func stringMatcher(sm *networkingapi.StringMatch) *matcher.StringMatcher {
	switch v := sm.GetMatchType().(type) {
	case *networkingapi.StringMatch_Exact:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v.Exact}}
	case *networkingapi.StringMatch_Prefix:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v.Prefix}}
	case *networkingapi.StringMatch_Regex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: v.Regex}}}
	}
	return nil
}

// mirrorPolicies (route.go, applyHTTPRouteDestination, MirrorPercent,
// MirrorPercentByPolicy): mirror with mirrorPercentage (or the deprecated
// mirrorPercent), then each of mirrors; 100% unless given, none at 0%.
func (b *builder) mirrorPolicies(cluster func(path string, d *networkingapi.Destination) string, path string, hr *networkingapi.HTTPRoute) []*route.RouteAction_RequestMirrorPolicy {
	var out []*route.RouteAction_RequestMirrorPolicy
	add := func(c string, pct *envoytype.FractionalPercent) {
		out = append(out, &route.RouteAction_RequestMirrorPolicy{
			Cluster:         c,
			RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: pct},
			TraceSampled:    wrapperspb.Bool(false),
		})
	}
	hundred := &envoytype.FractionalPercent{Numerator: 100, Denominator: envoytype.FractionalPercent_HUNDRED}
	if m := hr.GetMirror(); m != nil {
		//lint:ignore SA1019 Istio still honours the deprecated mirrorPercent
		legacyPercent := hr.GetMirrorPercent()
		switch {
		case hr.GetMirrorPercentage() != nil:
			if v := hr.GetMirrorPercentage().GetValue(); v > 0 {
				add(cluster(path+".mirror", m), millionths(v))
			}
		case legacyPercent != nil:
			if v := legacyPercent.GetValue(); v > 0 {
				add(cluster(path+".mirror", m), &envoytype.FractionalPercent{Numerator: v, Denominator: envoytype.FractionalPercent_HUNDRED})
			}
		default:
			add(cluster(path+".mirror", m), hundred)
		}
	}
	for i, mp := range hr.GetMirrors() {
		if mp.GetDestination() == nil {
			continue
		}
		p := path + ".mirrors[" + strconv.Itoa(i) + "].destination"
		switch {
		case mp.GetPercentage() == nil:
			add(cluster(p, mp.GetDestination()), hundred)
		case mp.GetPercentage().GetValue() > 0:
			add(cluster(p, mp.GetDestination()), millionths(mp.GetPercentage().GetValue()))
		}
	}
	return out
}
