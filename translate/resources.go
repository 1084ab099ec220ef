// Package translate turns a mesh into the Envoy resources of one proxy:
// Istio model in, Envoy resources out. It is pure (no I/O, no gRPC, no
// Docker); package xds serves what it builds.
package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Resources is everything one proxy is served: every resource it references
// and nothing else, so the ADS snapshot is consistent.
type Resources struct {
	Listeners []*listener.Listener
	Clusters  []*cluster.Cluster
	Routes    []*route.RouteConfiguration
	Endpoints []*endpoint.ClusterLoadAssignment
	Secrets   []*tls.Secret
}
