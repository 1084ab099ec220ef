package translate

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
)

// Env is what translation needs besides the mesh: where workloads live and
// the certificates to hand out over SDS.
type Env struct {
	// Addrs maps workload ID (namespace/name) to its IP, and Service.VIPKey
	// to the cluster IP, from mesh.AddressPlan.
	Addrs map[string]netip.Addr
	// Certs issues workload, gateway and client credentials. Nil is allowed
	// when the caller only wants listeners and clusters (no Secrets then).
	Certs *certs.Store
}

// Translate builds every Envoy resource the proxy of workload proxy needs.
// It is pure: no I/O. Config meshtls cannot translate faithfully is an error
// naming the resource and field, never silently dropped.
func Translate(m *mesh.Mesh, proxy *mesh.Workload, env *Env) (*Resources, error) {
	if m == nil || proxy == nil || env == nil {
		return nil, errors.New("translate.Translate: mesh, proxy and env must not be nil")
	}
	if !proxy.HasProxy() {
		return nil, fmt.Errorf("translate.Translate: workload %s has no proxy (sidecar: false or external: true); only sidecars and gateways get Envoy config", proxy.ID())
	}
	b := &builder{
		m:           m,
		proxy:       proxy,
		env:         env,
		clusters:    map[string]*cluster.Cluster{},
		secrets:     map[string]secretNeed{},
		reported:    map[string]bool{},
		targetPorts: map[string][]uint32{},
		decisions:   map[string]mesh.Decision{},
		scope:       m.ScopeFor(proxy),
	}
	if proxy.Gateway {
		b.buildGateway()
	} else {
		b.buildSidecar()
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, fmt.Errorf("translate %s: %w", proxy.ID(), err)
	}
	b.enableALPNOverrides()
	noConnectedLogOnTerminatedTLS(b.listeners)
	b.buildSecrets()
	if err := errors.Join(b.errs...); err != nil {
		return nil, fmt.Errorf("translate %s: %w", proxy.ID(), err)
	}
	res := b.resources()
	if err := res.Validate(); err != nil {
		return nil, fmt.Errorf("translate %s: generated invalid Envoy config (a meshtls bug): %w", proxy.ID(), err)
	}
	return res, nil
}

// Validate runs the protoc-gen-validate rules of every resource.
func (r *Resources) Validate() error {
	var errs []error
	for _, l := range r.Listeners {
		if err := l.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("listener %s: %w", l.GetName(), err))
		}
	}
	for _, c := range r.Clusters {
		if err := c.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.GetName(), err))
		}
	}
	for _, rc := range r.Routes {
		if err := rc.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", rc.GetName(), err))
		}
	}
	for _, e := range r.Endpoints {
		if err := e.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("endpoints %s: %w", e.GetClusterName(), err))
		}
	}
	for _, s := range r.Secrets {
		if err := s.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", s.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// builder accumulates one proxy's resources.
type builder struct {
	m     *mesh.Mesh
	proxy *mesh.Workload
	env   *Env

	listeners  []*listener.Listener
	routes     []*route.RouteConfiguration
	clusters   map[string]*cluster.Cluster
	secrets    map[string]secretNeed // SDS names referenced, with how to make them
	secretList []*tlsv3.Secret
	// targetPorts lists the ports of each destination host (VirtualService
	// destinations without a port).
	targetPorts map[string][]uint32

	// noALPNOverride lists the clusters Istio's per-request ALPN skips
	// (DestinationRule SIMPLE/MUTUAL; alpn.go).
	noALPNOverride map[string]bool

	errs     []error
	reported map[string]bool // error texts already reported, to report each once

	decisions map[string]mesh.Decision // see Resources.Decisions

	// scope is a sidecar proxy's SidecarScope (its Sidecar resource's, or
	// Istio's default); nil for gateways: it narrows the services,
	// ServiceEntry hosts and VirtualServices the proxy gets (targets.go scoped).
	scope *mesh.SidecarScope
}

// unsupported reports a field meshtls does not translate.
func (b *builder) unsupported(resource, field string) {
	b.fail(fmt.Errorf("%s: %s is not supported by meshtls yet; remove it from the bundle", resource, field))
}

func (b *builder) fail(err error) {
	if b.reported[err.Error()] {
		return
	}
	b.reported[err.Error()] = true
	b.errs = append(b.errs, err)
}

func (b *builder) addCluster(c *cluster.Cluster) {
	if _, ok := b.clusters[c.Name]; !ok {
		b.clusters[c.Name] = c
	}
}

func (b *builder) resources() *Resources {
	res := &Resources{Listeners: b.listeners, Routes: b.routes, Decisions: b.decisions}
	for _, c := range b.clusters {
		res.Clusters = append(res.Clusters, c)
	}
	res.Secrets = b.secretList
	slices.SortFunc(res.Listeners, func(a, b *listener.Listener) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(res.Clusters, func(a, b *cluster.Cluster) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(res.Routes, func(a, b *route.RouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(res.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.Name, b.Name) })
	return res
}

// proxyName is the node ID the access logs carry.
func (b *builder) proxyName() string { return b.proxy.ID() }

// ---- small proto helpers ----

// mustAny packs m with a deterministic encoding: maps (JSON access-log
// formats, metadata) otherwise serialise in random order, so the same config
// translated twice would hash differently and be pushed again although
// nothing changed.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("translate: marshal %T: %v", m, err)) // only fails for nil or broken descriptors
	}
	return a
}

func tcpAddress(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol:      core.SocketAddress_TCP,
		Address:       ip,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

// adsSource is the config source of RDS and SDS resources: the same ADS stream.
func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
