package xds

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshtls/meshtls/internal/envoytest"
	"github.com/meshtls/meshtls/translate"
)

// edsResources is one EDS cluster as istiod writes it (ADS, initial fetch
// timeout 0: it warms until it gets endpoints) and its endpoints.
func edsResources(connectTimeout time.Duration, ip string) *translate.Resources {
	const name = "outbound|80||x.default.svc.cluster.local"
	return &translate.Resources{
		Clusters: []*cluster.Cluster{{
			Name:                 name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			ConnectTimeout:       durationpb.New(connectTimeout),
			EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{ServiceName: name, EdsConfig: &core.ConfigSource{
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
				InitialFetchTimeout:   durationpb.New(0),
				ResourceApiVersion:    core.ApiVersion_V3,
			}},
		}},
		Endpoints: []*endpoint.ClusterLoadAssignment{{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: 80}}}},
			}}}},
		}}}},
	}
}

// TestServerAnswersWarmingEDS: a changed EDS cluster warms until it gets an
// EDS response, and asks for it with the version and nonce it already has
// (an ACK to the cache); Envoy holds its CDS ACK meanwhile. After a CDS
// response the server answers that request ("Cluster warming" in
// track.go), both when the endpoints did not change and when their new
// version went out before the clusters that need it.
func TestServerAnswersWarmingEDS(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/a"
	name := edsResources(time.Second, "10.0.0.1").Endpoints[0].GetClusterName()
	v1, err := s.Set(node, edsResources(time.Second, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	f := dialFake(t, sock, node)
	// EDS is not wildcard: Envoy names its clusters in every request, ACKs
	// included (a request naming none unsubscribes).
	ackEDS := func(r *discovery.DiscoveryResponse) {
		f.request(resource.EndpointType, r.GetVersionInfo(), r.GetNonce(), []string{name}, "")
	}
	f.subscribe("")
	f.syncAll(v1)
	f.request(resource.EndpointType, "", "", []string{name}, "")
	eds := f.recv(resource.EndpointType)
	ackEDS(eds)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}
	waitWatches(t, s, node, 3) // the ACK parked EDS: nothing owed

	// The cluster changes, its endpoints do not.
	v2, err := s.Set(node, edsResources(2*time.Second, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cds := f.recv(resource.ClusterType)
	warm := func(eds *discovery.DiscoveryResponse) *discovery.DiscoveryResponse {
		t.Helper()
		f.request(resource.EndpointType, eds.GetVersionInfo(), eds.GetNonce(), []string{name}, "")
		again := f.recv(resource.EndpointType)
		if len(again.GetResources()) != 1 {
			t.Fatalf("EDS answer to the warming cluster has %d resources, want 1", len(again.GetResources()))
		}
		ackEDS(again)
		return again
	}
	eds = warm(eds)
	if eds.GetVersionInfo() != v1 {
		t.Fatalf("EDS answer version %q, want the unchanged %q", eds.GetVersionInfo(), v1)
	}
	f.ack(cds)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}

	// Both change, and the endpoints go out first: the proxy has not
	// ACKed the last clusters yet, so only the EDS watch is open.
	v3, err := s.Set(node, edsResources(3*time.Second, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cds = f.recv(resource.ClusterType) // held: the cluster warms
	v4, err := s.Set(node, edsResources(4*time.Second, "10.0.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	eds = f.recv(resource.EndpointType)
	if eds.GetVersionInfo() != v4 {
		t.Fatalf("EDS version %q, want %q", eds.GetVersionInfo(), v4)
	}
	ackEDS(eds) // the warming cluster of v3 takes it
	f.ack(cds)
	cds = f.recv(resource.ClusterType) // v4's cluster: warms again
	if cds.GetVersionInfo() != v4 {
		t.Fatalf("CDS version %q, want %q", cds.GetVersionInfo(), v4)
	}
	warm(eds)
	f.ack(cds)
	for _, v := range []string{v3, v4} {
		if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v); err != nil {
			t.Fatal(err)
		}
	}
	// Paid: the next ACK of EDS is an ACK again.
	waitWatches(t, s, node, 3)
	f.noMore()
}

// TestServerClusterChangeEnvoyACKs is the same with the real Envoy: a
// change of an EDS cluster whose endpoints stay the same is ACKed (Envoy
// would otherwise hold its CDS ACK forever, the cluster warming).
func TestServerClusterChangeEnvoyACKs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Envoy; -short skips it")
	}
	envoy := envoytest.Binary(t)
	s, sock, _ := testServer(t)
	const node = "ns/a"
	dir := t.TempDir()
	o := BootstrapOptions{NodeID: node, Cluster: "a.ns", XDSSocket: sock, AdminSocket: filepath.Join(dir, "admin.sock"),
		ConfigPath: filepath.Join(dir, "bootstrap.json")}
	b, err := Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.ConfigPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(envoy, CommandLine(o)...)
	logf, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	admin := NewAdmin(o.AdminSocket)
	for i, r := range []*translate.Resources{
		edsResources(time.Second, "127.0.0.1"),
		edsResources(2*time.Second, "127.0.0.1"), // cluster only
		edsResources(3*time.Second, "127.0.0.2"), // both
	} {
		v, err := s.Set(node, r)
		if err != nil {
			t.Fatal(err)
		}
		// A bound on a failure only: a cluster that never warms never ACKs.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Wait(ctx, node, v)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, admin.Diagnose(context.Background()))
		}
		cancel()
		if err != nil {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("push %d: %v\nEnvoy said:\n%s", i+1, err, b)
		}
	}
}
