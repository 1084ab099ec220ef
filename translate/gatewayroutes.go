package translate

import (
	"fmt"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// hostMatch intersects a VirtualService host with a server host, returning
// the more specific one (pilot/pkg/networking/core/gateway.go, pickMatchingGatewayHosts;
// pkg/config/host/name.go Matches).
func hostMatch(vsHost, serverHost string) (string, bool) {
	switch {
	case vsHost == serverHost:
		return vsHost, true
	case serverHost == "*":
		return vsHost, true
	case vsHost == "*":
		return serverHost, true
	case strings.HasPrefix(serverHost, "*.") && strings.HasSuffix(vsHost, serverHost[1:]):
		return vsHost, true
	case strings.HasPrefix(vsHost, "*.") && strings.HasSuffix(serverHost, vsHost[1:]):
		return serverHost, true
	}
	return "", false
}

// boundVirtualServices are the VirtualServices bound to s's Gateway that the
// server's host namespaces admit, each with the hosts it serves there.
func (b *builder) boundVirtualServices(s *gwServer) []vsHosts {
	var out []vsHosts
	for _, vs := range b.m.VirtualServicesFor(s.ref, b.proxy.Namespace) {
		var hosts []string
		for _, sh := range s.hosts() {
			if sh.ns != "*" && sh.ns != vs.Namespace {
				continue
			}
			for _, h := range vs.Spec.GetHosts() {
				if m, ok := hostMatch(h, sh.host); ok && !slices.Contains(hosts, m) {
					hosts = append(hosts, m)
				}
			}
		}
		if len(hosts) > 0 {
			out = append(out, vsHosts{vs, hosts})
		}
	}
	return out
}

type vsHosts struct {
	vs    *networking.VirtualService
	hosts []string
}

// gatewayRouteConfig: virtual hosts from the http routes of the bound
// VirtualServices; routes of several VirtualServices for one host are
// merged in order (gateway.go, buildGatewayHTTPRouteConfig). Hosts no
// VirtualService serves get Envoy's 404.
//
// tls.httpsRedirect belongs to its server: it marks the virtual hosts that
// server contributes, and each of the server's own hosts gets a virtual host
// even without a VirtualService, so a redirect-only server answers 301
// (gateway.go, buildGatewayHTTPRouteConfig: RequireTls ALL per server, then
// "create VirtualHost to redirect" for server.Hosts taken as written).
//
// Each server's own port names its virtual hosts and matches routes, even
// when the listener is on the Service's targetPort (gateway.go,
// buildGatewayHTTPRouteConfig: "port := int(server.Port.Number)").
func (b *builder) gatewayRouteConfig(name string, servers []*gwServer) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: name, ValidateClusters: wrapperspb.Bool(false)}
	byHost := map[string]*route.VirtualHost{}
	var order []string
	vhost := func(h string, port uint32) *route.VirtualHost {
		h = strings.ToLower(h)
		v, ok := byHost[h]
		if !ok {
			v = &route.VirtualHost{Name: fmt.Sprintf("%s:%d", h, port), Domains: []string{h, fmt.Sprintf("%s:%d", h, port)}}
			if h == "*" {
				v.Domains = []string{"*"}
			}
			byHost[h] = v
			order = append(order, h)
		}
		return v
	}
	for _, s := range servers {
		port := s.port()
		redirect := s.tls.GetHttpsRedirect()
		for _, vh := range b.boundVirtualServices(s) {
			// Only the http block applies to HTTP(S) servers; a
			// VirtualService none of whose routes applies here is skipped
			// (route.go, BuildHTTPRoutesForVirtualService: "no routes matched").
			routes := b.httpRoutes(vh.vs, port, s.ref, b.proxy.Labels, s.tls != nil)
			if len(routes) == 0 {
				continue
			}
			for _, h := range vh.hosts {
				v := vhost(h, port)
				v.Routes = append(v.Routes, routes...)
				if redirect {
					v.RequireTls = route.VirtualHost_ALL
				}
			}
		}
		if redirect {
			for _, h := range s.srv.GetHosts() {
				vhost(h, port).RequireTls = route.VirtualHost_ALL
			}
		}
	}
	for _, h := range order {
		rc.VirtualHosts = append(rc.VirtualHosts, byHost[h])
	}
	return rc
}

// gatewayHCM: gateways overwrite XFCC with what they verified
// (SANITIZE_SET, meshConfig.defaultConfig.gatewayTopology default) and use
// the client's address (pilot/pkg/networking/core/gateway.go,
// buildGatewayConnectionManager).
func (b *builder) gatewayHCM(port uint32, routeName string, logs []*accesslogv3.AccessLog) *listener.Filter {
	return hcmFilter(&hcm.HttpConnectionManager{
		StatPrefix: fmt.Sprintf("outbound_0.0.0.0_%d", port),
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: routeName,
		}},
		HttpFilters:              routeHTTPFilters(),
		AccessLog:                logs,
		UseRemoteAddress:         wrapperspb.Bool(true),
		ForwardClientCertDetails: hcm.HttpConnectionManager_SANITIZE_SET,
		SetCurrentClientCertDetails: &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true),
			Cert:    true,
			Uri:     true,
			Dns:     true,
		},
	})
}
