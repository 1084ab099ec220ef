package xds

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshtls/meshtls/internal/envoytest"
	"github.com/meshtls/meshtls/translate"
)

// fakeAdmin serves canned admin answers on a Unix socket.
func fakeAdmin(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestAdminFake(t *testing.T) {
	var calls atomic.Int32
	sock := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/ready":
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "INITIALIZING\n")
				return
			}
			io.WriteString(w, "LIVE\n")
		case "/stats":
			if r.URL.Query().Get("format") != "json" {
				http.Error(w, "want json", 400)
				return
			}
			io.WriteString(w, `{"stats":[{"name":"listener_manager.total_listeners_warming","value":1},{"histograms":{}}]}`)
		case "/config_dump":
			if r.URL.Query().Get("resource") != "dynamic_listeners" {
				http.Error(w, "want resource", 400)
				return
			}
			io.WriteString(w, `{"configs":[
			  {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener","name":"in","active_state":{"version_info":"1"}},
			  {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener","name":"tls","warming_state":{"version_info":"2"}},
			  {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener","name":"bad","error_state":{"details":"boom"}}]}`)
		default:
			http.NotFound(w, r)
		}
	})
	a := NewAdmin(sock)
	if err := a.Ready(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	stats, err := a.Stats(context.Background(), "^listener_manager.total_listeners_warming$")
	if err != nil || stats["listener_manager.total_listeners_warming"] != 1 || len(stats) != 1 {
		t.Fatalf("Stats = %v, %v", stats, err)
	}
	st, err := a.Listeners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Active, st.Warming, st.Errors) != "[in] [tls] map[bad:boom]" {
		t.Fatalf("Listeners = %+v", st)
	}
	err = a.WaitNoWarming(ctxTimeout(t, 100*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "still warming: tls") {
		t.Fatalf("WaitNoWarming = %v, want it to name listener tls", err)
	}
	if _, err := a.Get(context.Background(), "/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Get(/nope) = %v", err)
	}
}

func TestAdminNotReady(t *testing.T) {
	sock := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "PRE_INITIALIZING\n")
	})
	err := NewAdmin(sock).Ready(ctxTimeout(t, 100*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "PRE_INITIALIZING") {
		t.Fatalf("Ready = %v, want the last state", err)
	}
	err = NewAdmin(filepath.Join(t.TempDir(), "none.sock")).Ready(ctxTimeout(t, 100*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("Ready(no socket) = %v", err)
	}
}

// --- live test with the real Envoy on the host ---

// startEnvoy runs Envoy with a bootstrap pointing at xdsSock and returns its
// admin client. Output is kept and shown if the test fails.
func startEnvoy(t *testing.T, node, xdsSock string) *Admin {
	t.Helper()
	bin := envoytest.Binary(t)
	dir := t.TempDir()
	opts := BootstrapOptions{
		NodeID: node, Cluster: "live.test",
		XDSSocket: xdsSock, AdminSocket: filepath.Join(dir, "admin.sock"),
		ConfigPath: filepath.Join(dir, "bootstrap.json"),
		LogLevel:   "warning",
	}
	b, err := Bootstrap(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opts.ConfigPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, CommandLine(opts)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("envoy output:\n%s", out.String())
		}
	})
	return NewAdmin(opts.AdminSocket)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

func loopback(port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
}

// tcpListener forwards port to cluster with tcp_proxy.
func tcpListener(t *testing.T, name string, port uint32, clusterName string) *listener.Listener {
	tp, err := anypb.New(&tcpproxy.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: clusterName}})
	if err != nil {
		t.Fatal(err)
	}
	return &listener.Listener{
		Name:    name,
		Address: loopback(port),
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: tp},
		}}}},
	}
}

func staticCluster(name string, port uint32) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: loopback(port)}}}},
		}}},
	}
}

// TestServerLiveEnvoy drives the real Envoy on the host: a listener Envoy
// rejects fails Push with Envoy's own message; a good one is ACKed, serves
// and carries a TCP connection; one waiting for a secret is ACKed but warming.
func TestServerLiveEnvoy(t *testing.T) {
	// A backend the good listener forwards to; it greets every connection.
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from backend\n")
			c.Close()
		}
	}()
	backendPort := uint32(backend.Addr().(*net.TCPAddr).Port)

	s, sock, _ := testServer(t)
	const node = "live/envoy"
	admin := startEnvoy(t, node, sock)

	// 1. Rejected: the filter's typed_config names a type Envoy does not
	// know. Proto validation cannot see inside an Any, so Set accepts it and
	// only Envoy can say no.
	bad := tcpListener(t, "bad", freePort(t), "backend")
	bad.FilterChains[0].Filters[0].ConfigType = &listener.Filter_TypedConfig{
		TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/meshtls.test.NoSuchFilter"}}
	err = s.Push(ctxTimeout(t, 20*time.Second), map[string]*translate.Resources{node: {
		Listeners: []*listener.Listener{bad},
		Clusters:  []*cluster.Cluster{staticCluster("backend", backendPort)},
	}})
	if err == nil {
		t.Fatal("Push of a listener Envoy must reject succeeded")
	}
	for _, want := range []string{node, "LDS", "NACK", "meshtls.test.NoSuchFilter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Push error lacks %q: %v", want, err)
		}
	}
	t.Logf("rejected as expected: %v", err)

	// 2. Accepted and serving.
	port := freePort(t)
	good := &translate.Resources{
		Listeners: []*listener.Listener{tcpListener(t, "good", port, "backend")},
		Clusters:  []*cluster.Cluster{staticCluster("backend", backendPort)},
	}
	if err := s.Push(ctxTimeout(t, 20*time.Second), map[string]*translate.Resources{node: good}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Ready(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := admin.WaitNoWarming(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to Envoy's listener: %v", err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || string(greeting) != "hello from backend\n" {
		t.Fatalf("through Envoy got %q, %v", greeting, err)
	}

	// 3. ACKed but warming: a TLS listener whose certificate comes over SDS
	// as a secret this proxy is never sent. LDS is ACKed, so Push succeeds,
	// yet the listener does not serve: WaitNoWarming must say so.
	tlsCtx, err := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
			Name:      "kubernetes://never-sent",
			SdsConfig: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	warming := tcpListener(t, "tls-warming", freePort(t), "backend")
	warming.FilterChains[0].TransportSocket = &core.TransportSocket{
		Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: tlsCtx}}
	good.Listeners = append(good.Listeners, warming)
	if err := s.Push(ctxTimeout(t, 20*time.Second), map[string]*translate.Resources{node: good}); err != nil {
		t.Fatal(err)
	}
	err = admin.WaitNoWarming(ctxTimeout(t, 500*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "tls-warming") {
		t.Fatalf("WaitNoWarming = %v, want it to name listener tls-warming", err)
	}
	stats, err := admin.Stats(context.Background(), "^listener_manager.total_listeners_warming$")
	if err != nil || stats["listener_manager.total_listeners_warming"] != 1 {
		t.Fatalf("warming stat = %v, %v; want 1", stats, err)
	}
	if got := s.LastACKed(node); got["LDS"] == "" || got["CDS"] == "" {
		t.Fatalf("LastACKed = %v", got)
	}
}
