// Package translate turns a mesh into the Envoy resources of one proxy:
// Istio model in, Envoy resources out. It is pure (no I/O, no gRPC, no
// Docker); package xds serves what it builds.
//
// Every proxy of every bundle in scenarios/testdata and bench/matrix has a
// golden file under testdata/golden/ holding its resources as stable JSON
// (certificates written as what they say, keys left out). A translator
// change shows there as a diff: regenerate with
//
//	go test ./translate/ -run TestGolden -update
//
// and review the diff as part of the change.
package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshtls/meshtls/mesh"
)

// Resources is everything one proxy is served: every resource it references
// and nothing else, so the ADS snapshot is consistent.
type Resources struct {
	Listeners []*listener.Listener
	Clusters  []*cluster.Cluster
	Routes    []*route.RouteConfiguration
	Endpoints []*endpoint.ClusterLoadAssignment
	Secrets   []*tls.Secret
	// Decisions name the Istio resources translation used for each inbound
	// port (InboundDecisionKey), gateway port (GatewayDecisionKey) and
	// outbound cluster (by cluster name). Not served to Envoy: the trace
	// shows them per hop.
	Decisions map[string]mesh.Decision
}

// decide records what decided key, keeping what was recorded first.
func (b *builder) decide(key string, d mesh.Decision) {
	b.decisions[key] = b.decisions[key].Merge(d)
}
