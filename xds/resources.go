// Package xds turns a mesh into the Envoy resources of one proxy (translate),
// serves them over ADS (serve), and knows when each proxy really runs them
// (track). It knows nothing of Docker.
package xds

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
