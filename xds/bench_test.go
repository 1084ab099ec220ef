package xds

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshtls/meshtls/translate"
)

// autoACK connects an in-process fake Envoy for node that ACKs every
// response at once. Benchmarks use it instead of real Envoys: they measure
// the server's push-to-ACK path (snapshot, gRPC over a Unix socket,
// callbacks, Wait), not Envoy's config application.
func autoACK(b *testing.B, sock, node string) {
	b.Helper()
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); conn.Close() })
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := &core.Node{Id: node}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: typ}); err != nil {
			b.Fatal(err)
		}
		n = nil
	}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			if stream.Send(&discovery.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}) != nil {
				return
			}
		}
	}()
}

func benchmarkPushAck(b *testing.B, proxies int) {
	s, sock, _ := testServer(b)
	nodes := make([]string, proxies)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("bench/p%d", i)
		autoACK(b, sock, nodes[i])
	}
	i := 0
	for b.Loop() {
		i++
		push := make(map[string]*translate.Resources, proxies)
		for _, n := range nodes {
			// New content every round so every push is a new version.
			push[n] = simpleResources("l" + strconv.Itoa(i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Push(ctx, push)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPushAck1Proxy: ns/op is one Push (Set + wait for LDS and CDS ACKs)
// to one proxy.
func BenchmarkPushAck1Proxy(b *testing.B) { benchmarkPushAck(b, 1) }

// BenchmarkPushAck10Proxies: ns/op is one Push to ten proxies at once.
func BenchmarkPushAck10Proxies(b *testing.B) { benchmarkPushAck(b, 10) }
