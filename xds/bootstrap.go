package xds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	metrics "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Default in-container paths (the host directories holding these sockets
// are mounted into each pod).
const (
	DefaultXDSSocket   = "/var/run/meshtls/xds/xds.sock"
	DefaultAdminSocket = "/var/run/meshtls/admin.sock"
	DefaultAdminTCP    = "127.0.0.1:15000"
	// XDSClusterName is the static cluster Envoy reaches the xDS server through.
	XDSClusterName = "xds"
)

// BootstrapOptions describes one proxy's bootstrap.
type BootstrapOptions struct {
	// NodeID is the xDS node ID: the workload ID "namespace/name". Required.
	NodeID string
	// Cluster is the node cluster, "name.namespace". Required.
	Cluster string
	// Metadata is copied into node.metadata as strings.
	Metadata map[string]string

	// XDSSocket is the xDS server's Unix socket (default DefaultXDSSocket).
	XDSSocket string
	// XDSAddress, "host:port", reaches the xDS server over TCP instead.
	XDSAddress string

	// AdminSocket is the admin API's Unix socket (default DefaultAdminSocket),
	// created with mode 0660.
	AdminSocket string
	// AdminTCP serves the admin API on DefaultAdminTCP instead of a socket.
	AdminTCP bool

	// YAML makes Bootstrap return YAML instead of JSON.
	YAML bool

	// ConfigPath is where the bootstrap file is for CommandLine (required there).
	ConfigPath string
	// LogLevel for CommandLine (default "warning").
	LogLevel string
}

// Bootstrap returns the Envoy bootstrap for opts as JSON (or YAML): the node,
// ADS over gRPC to the "xds" static cluster, and the admin API. Everything
// else (listeners, clusters, secrets) comes over ADS.
func Bootstrap(opts BootstrapOptions) ([]byte, error) {
	b, err := BootstrapProto(opts)
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("xds: marshal bootstrap: %w", err)
	}
	if opts.YAML {
		return yaml.JSONToYAML(js)
	}
	// protojson varies its whitespace on purpose; re-indent for stable files.
	var out bytes.Buffer
	if err := json.Indent(&out, js, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// BootstrapProto is Bootstrap before marshalling, validated.
func BootstrapProto(opts BootstrapOptions) (*bootstrap.Bootstrap, error) {
	if opts.NodeID == "" || opts.Cluster == "" {
		return nil, errors.New("xds: bootstrap needs NodeID (namespace/name) and Cluster (name.namespace)")
	}
	if opts.XDSSocket != "" && opts.XDSAddress != "" {
		return nil, errors.New("xds: bootstrap: set XDSSocket or XDSAddress, not both")
	}
	if opts.AdminSocket != "" && opts.AdminTCP {
		return nil, errors.New("xds: bootstrap: set AdminSocket or AdminTCP, not both")
	}

	node := &core.Node{Id: opts.NodeID, Cluster: opts.Cluster}
	if len(opts.Metadata) > 0 {
		m := make(map[string]any, len(opts.Metadata))
		for k, v := range opts.Metadata {
			m[k] = v
		}
		md, err := structpb.NewStruct(m)
		if err != nil {
			return nil, fmt.Errorf("xds: bootstrap metadata: %w", err)
		}
		node.Metadata = md
	}

	xdsCluster, err := xdsCluster(opts)
	if err != nil {
		return nil, err
	}

	var adminAddr *core.Address
	if opts.AdminTCP {
		adminAddr, err = socketAddress(DefaultAdminTCP)
		if err != nil {
			return nil, err
		}
	} else {
		path := opts.AdminSocket
		if path == "" {
			path = DefaultAdminSocket
		}
		adminAddr = &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path, Mode: 0o660}}}
	}

	ads := &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
	b := &bootstrap.Bootstrap{
		Node: node,
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:             core.ApiConfigSource_GRPC,
				TransportApiVersion: core.ApiVersion_V3,
				GrpcServices: []*core.GrpcService{{
					TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName}},
				}},
				// Identity is sent once per stream; later requests stay small.
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{xdsCluster}},
		// No access log on admin: nothing to configure.
		Admin:       &bootstrap.Admin{Address: adminAddr},
		StatsConfig: statsConfig(),
		// As Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json
		// deferred_stat_options): a cluster's traffic stats are created when
		// it first carries traffic; 1.5 MB less per proxy with 205 clusters.
		DeferredStatOptions: &bootstrap.Bootstrap_DeferredStatOptions{EnableDeferredCreationStats: true},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("xds: bootstrap for %s is invalid: %w", opts.NodeID, err)
	}
	return b, nil
}

// statsConfig keeps the stats Istio's sidecars keep by default (prefixes
// cluster_manager, listener_manager, server and the xDS cluster:
// pkg/bootstrap/config.go requiredEnvoyStatsMatcherInclusionPrefixes, and
// the stats_matcher of tools/packaging/common/envoy_bootstrap.json) plus
// every TLS stat, which a failed check's evidence saves (/stats?filter=ssl).
// Envoy otherwise creates about a hundred stats per cluster: in a 100-pod
// mesh each proxy held 28,000 of them and 5 MB more memory.
func statsConfig() *metrics.StatsConfig {
	var pats []*matcher.StringMatcher
	for _, p := range []string{"cluster_manager", "listener_manager", "server", "cluster." + XDSClusterName + "."} {
		pats = append(pats, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: p}})
	}
	pats = append(pats, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: `\.ssl\.`}}})
	return &metrics.StatsConfig{StatsMatcher: &metrics.StatsMatcher{
		StatsMatcher: &metrics.StatsMatcher_InclusionList{InclusionList: &matcher.ListStringMatcher{Patterns: pats}},
	}}
}

func xdsCluster(opts BootstrapOptions) (*cluster.Cluster, error) {
	discovery := cluster.Cluster_STATIC
	var addr *core.Address
	if opts.XDSAddress != "" {
		host, _, err := net.SplitHostPort(opts.XDSAddress)
		if err != nil {
			return nil, fmt.Errorf("xds: bootstrap XDSAddress %q: want host:port: %w", opts.XDSAddress, err)
		}
		if net.ParseIP(host) == nil {
			discovery = cluster.Cluster_STRICT_DNS // STATIC needs an IP
		}
		if addr, err = socketAddress(opts.XDSAddress); err != nil {
			return nil, err
		}
	} else {
		path := opts.XDSSocket
		if path == "" {
			path = DefaultXDSSocket
		}
		addr = &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path}}}
	}
	// gRPC needs HTTP/2 to the xDS server.
	h2, err := anypb.New(&upstreamhttp.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return &cluster.Cluster{
		Name:                 XDSClusterName,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(time.Second),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2,
		},
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: XDSClusterName,
			Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{
					HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: addr}},
				}},
			}},
		},
	}, nil
}

func socketAddress(hostport string) (*core.Address, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("xds: address %q: want host:port: %w", hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("xds: address %q: bad port: %w", hostport, err)
	}
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
	}}}, nil
}

// CommandLine returns Envoy's arguments (without the program name) for a
// bootstrap at opts.ConfigPath: one worker thread, no drain time (a config
// change closes the connections of the listeners and filter chains it
// replaced at once, so each later check meets the new config alone, not a
// pooled connection the old chain still serves or is about to reset;
// Istio drains for 45s to spare real traffic), fast shutdown, no hot
// restart, and access-log lines written as they come.
func CommandLine(opts BootstrapOptions) []string {
	level := opts.LogLevel
	if level == "" {
		level = "warning"
	}
	return []string{
		"-c", opts.ConfigPath,
		"--concurrency", "1",
		"--drain-time-s", "0",
		"--parent-shutdown-time-s", "2",
		// As Istio's proxies (pkg/envoy/proxy.go): a proxy is never hot
		// restarted, so it needs no shared memory or base ID, and many
		// Envoys share a host without choosing one.
		"--disable-hot-restart",
		// Access-log lines are the evidence a check waits for. A minimum
		// flush size of 0 wakes the flush thread for every line, so each is
		// written at once (Istio buffers up to 64 KB: its ProxyConfig
		// fileFlushMinSizeKb, 0 meaning Envoy's default); the timer then
		// only backs it up, every second as in Istio (pkg/envoy/proxy.go
		// fileFlushInterval). A 10 ms timer instead woke each proxy 100
		// times a second: 0.012 CPU-seconds per second per idle proxy, a
		// whole core for a 100-pod mesh (docs/scaling.md).
		"--file-flush-interval-msec", "1000",
		"--file-flush-min-size-kb", "0",
		"--log-level", level,
	}
}
