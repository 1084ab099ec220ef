package xds

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	status "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshtls/meshtls/translate"
)

// testServer starts a Server on a temp Unix socket and returns it with the
// socket path. Events from callbacks are delivered on the returned channel.
func testServer(t testing.TB) (*Server, string, chan string) {
	t.Helper()
	events := make(chan string, 1024)
	send := func(s string) {
		select {
		case events <- s:
		default:
		}
	}
	s := NewServer(WithCallbacks(Callbacks{
		Connected:    func(node string, _ int64) { send("connected " + node) },
		Disconnected: func(node string, _ int64) { send("disconnected " + node) },
		ACKed: func(node, typeURL, version string) {
			send("ack " + node + " " + shortType(typeURL) + " " + version)
		},
		NACKed: func(node, typeURL, version, msg string) {
			send("nack " + node + " " + shortType(typeURL) + " " + version)
		},
	}))
	return s, serve(t, s), events
}

// serve runs s on a temp Unix socket until the test ends and returns its path.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "xds.sock")
	lis, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return sock
}

// waitEvent reads events until want arrives.
func waitEvent(t testing.TB, events chan string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("event %q did not happen within 5s", want)
		}
	}
}

// fakeEnvoy is an in-process ADS client speaking state-of-the-world like
// Envoy: it requests, receives and ACKs/NACKs explicitly.
type fakeEnvoy struct {
	t       testing.TB
	node    string
	stream  discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel  context.CancelFunc
	resps   chan *discovery.DiscoveryResponse
	pending map[string][]*discovery.DiscoveryResponse
	first   bool
}

func dialFake(t testing.TB, sock, node string) *fakeEnvoy {
	t.Helper()
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f := &fakeEnvoy{t: t, node: node, stream: stream, cancel: cancel,
		resps: make(chan *discovery.DiscoveryResponse, 64), pending: map[string][]*discovery.DiscoveryResponse{}, first: true}
	t.Cleanup(cancel)
	go func() {
		defer close(f.resps)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			f.resps <- r
		}
	}()
	return f
}

// request sends a DiscoveryRequest; nack != "" makes it a NACK.
func (f *fakeEnvoy) request(typeURL, version, nonce string, names []string, nack string) {
	f.t.Helper()
	req := &discovery.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names}
	if f.first {
		req.Node = &core.Node{Id: f.node, Cluster: "test"}
		f.first = false
	}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nack}
	}
	if err := f.stream.Send(req); err != nil {
		f.t.Fatalf("send %s: %v", shortType(typeURL), err)
	}
}

// ack accepts resp.
func (f *fakeEnvoy) ack(resp *discovery.DiscoveryResponse) {
	f.request(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), nil, "")
}

// recv returns the next response of typeURL.
func (f *fakeEnvoy) recv(typeURL string) *discovery.DiscoveryResponse {
	f.t.Helper()
	if q := f.pending[typeURL]; len(q) > 0 {
		f.pending[typeURL] = q[1:]
		return q[0]
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r, ok := <-f.resps:
			if !ok {
				f.t.Fatalf("stream closed while waiting for %s", shortType(typeURL))
			}
			if r.GetTypeUrl() == typeURL {
				return r
			}
			f.pending[r.GetTypeUrl()] = append(f.pending[r.GetTypeUrl()], r)
		case <-deadline:
			f.t.Fatalf("no %s response within 5s", shortType(typeURL))
		}
	}
}

// subscribe sends the initial wildcard LDS and CDS requests, like Envoy does,
// announcing version for both ("" for a fresh Envoy).
func (f *fakeEnvoy) subscribe(version string) { f.subscribeAt(version, version) }

// subscribeAt is subscribe for an Envoy that runs LDS at lds and CDS at cds.
func (f *fakeEnvoy) subscribeAt(lds, cds string) {
	f.request(resource.ClusterType, cds, "", nil, "")
	f.request(resource.ListenerType, lds, "", nil, "")
}

// syncAll receives one LDS and one CDS response, checks both carry version
// and ACKs them.
func (f *fakeEnvoy) syncAll(version string) {
	f.t.Helper()
	f.syncTo(map[string]string{"LDS": version, "CDS": version})
}

// syncTo receives one LDS and one CDS response, checks their versions
// against want (keyed LDS, CDS, as TypeVersions) and ACKs them.
func (f *fakeEnvoy) syncTo(want map[string]string) {
	f.t.Helper()
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		r := f.recv(typ)
		if r.GetVersionInfo() != want[shortType(typ)] {
			f.t.Fatalf("%s version = %q, want %q", shortType(typ), r.GetVersionInfo(), want[shortType(typ)])
		}
		f.ack(r)
	}
}

// noMore fails if a response is waiting that the test did not receive.
func (f *fakeEnvoy) noMore() {
	f.t.Helper()
	for typ, q := range f.pending {
		if len(q) > 0 {
			f.t.Fatalf("unexpected %s response version %q", shortType(typ), q[0].GetVersionInfo())
		}
	}
	select {
	case r := <-f.resps:
		f.t.Fatalf("unexpected %s response version %q", shortType(r.GetTypeUrl()), r.GetVersionInfo())
	default:
	}
}

func simpleResources(listeners ...string) *translate.Resources {
	return resourcesOf(listeners, []string{"c1"})
}

// resourcesOf is listeners and clusters with the given names.
func resourcesOf(listeners, clusters []string) *translate.Resources {
	r := &translate.Resources{}
	for _, l := range listeners {
		r.Listeners = append(r.Listeners, &listener.Listener{Name: l})
	}
	for _, c := range clusters {
		r.Clusters = append(r.Clusters, &cluster.Cluster{Name: c})
	}
	return r
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestServerACK(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/a"
	v1, err := s.Set(node, simpleResources("l1"))
	if err != nil {
		t.Fatal(err)
	}
	// Same content: same version, nothing new to send.
	if again, err := s.Set(node, simpleResources("l1")); err != nil || again != v1 {
		t.Fatalf("Set(same) = %q, %v; want %q", again, err, v1)
	}
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.syncAll(v1)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}
	got := s.LastACKed(node)
	if got["LDS"] != v1 || got["CDS"] != v1 {
		t.Fatalf("LastACKed = %v, want LDS and CDS at %s", got, v1)
	}
	// Push of identical content returns at once.
	if err := s.Push(ctxTimeout(t, 5*time.Second), map[string]*translate.Resources{node: simpleResources("l1")}); err != nil {
		t.Fatal(err)
	}
	// A change of listeners and clusters is pushed to the open stream as
	// both types at the new version, and ACKed.
	v2, err := s.Set(node, resourcesOf([]string{"l1", "l2"}, []string{"c1", "c2"}))
	if err != nil || v2 == v1 {
		t.Fatalf("Set(new) = %q, %v", v2, err)
	}
	f.syncAll(v2)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
	// Waiting for an older version is satisfied by the later one.
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}
	f.noMore()
}

// TestServerListenerOnlyChange: per-type versions. A Set that changes only
// the listeners sends only LDS; clusters and secrets keep their version and
// are not resent, and Wait returns on the LDS ACK alone.
func TestServerListenerOnlyChange(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/a"
	withSecret := func(listeners ...string) *translate.Resources {
		r := simpleResources(listeners...)
		r.Secrets = []*tlsv3.Secret{{Name: "default"}}
		return r
	}
	v1, err := s.Set(node, withSecret("l1"))
	if err != nil {
		t.Fatal(err)
	}
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.request(resource.SecretType, "", "", []string{"default"}, "")
	f.syncAll(v1)
	f.ack(f.recv(resource.SecretType))
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}

	v2, err := s.Set(node, withSecret("l1", "l2"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"LDS": v2, "CDS": v1, "RDS": v1, "EDS": v1, "SDS": v1}
	if got := s.TypeVersions(node, v2); !maps.Equal(got, want) {
		t.Fatalf("TypeVersions(%s) = %v, want %v", v2, got, want)
	}
	lds := f.recv(resource.ListenerType)
	if lds.GetVersionInfo() != v2 || len(lds.GetResources()) != 2 {
		t.Fatalf("LDS response version %q with %d listeners, want %q with 2", lds.GetVersionInfo(), len(lds.GetResources()), v2)
	}
	// Before the ACK, Wait is not satisfied (the LDS is what changed).
	if err := s.Wait(ctxTimeout(t, 50*time.Millisecond), node, v2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "LDS missing") {
		t.Fatalf("Wait(v2) before the LDS ACK = %v, want LDS missing", err)
	}
	f.ack(lds)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
	// SetSnapshot answers the watches it answers before Set returns, so the
	// CDS and SDS watches still parked (plus the new LDS one) prove neither
	// type was resent.
	waitWatches(t, s, node, 3)
	f.noMore()
	if got := s.LastACKed(node); got["LDS"] != v2 || got["CDS"] != v1 || got["SDS"] != v1 {
		t.Fatalf("LastACKed = %v, want LDS=%s CDS=%s SDS=%s", got, v2, v1, v1)
	}
	// Setting the same content again: same version, Wait returns at once.
	if again, err := s.Set(node, withSecret("l1", "l2")); err != nil || again != v2 {
		t.Fatalf("Set(same) = %q, %v; want %q", again, err, v2)
	}
	if err := s.Wait(ctxTimeout(t, time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
}

// TestServerWaitUnchangedTypeAfterManyVersions: a type unchanged for more
// Sets than the version history holds keeps its first version; its ACK must
// still satisfy Wait (a lookup of the ACKed version in the history would
// miss and Wait would hang).
func TestServerWaitUnchangedTypeAfterManyVersions(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/a"
	var v string
	for i := range maxVersions + 10 {
		var err error
		if v, err = s.Set(node, simpleResources(fmt.Sprintf("l%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"LDS": v, "CDS": "1", "RDS": "1", "EDS": "1", "SDS": "1"}
	if got := s.TypeVersions(node, v); !maps.Equal(got, want) {
		t.Fatalf("TypeVersions = %v, want %v", got, want)
	}
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.syncTo(want)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v); err != nil {
		t.Fatal(err)
	}
	if got := s.TypeVersions(node, "1"); got != nil {
		t.Fatalf("TypeVersions of a pruned version = %v, want nil", got)
	}
}

func TestServerPushManyNodes(t *testing.T) {
	s, sock, _ := testServer(t)
	nodes := []string{"ns/a", "ns/b", "other/c"}
	fakes := map[string]*fakeEnvoy{}
	for _, n := range nodes {
		fakes[n] = dialFake(t, sock, n)
		fakes[n].subscribe("")
	}
	push := map[string]*translate.Resources{}
	for _, n := range nodes {
		push[n] = simpleResources("l-" + n)
	}
	done := make(chan error, 1)
	go func() { done <- s.Push(ctxTimeout(t, 10*time.Second), push) }()
	for _, n := range nodes {
		fakes[n].syncAll("1")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServerNACK(t *testing.T) {
	s, sock, events := testServer(t)
	const node = "ns/a"
	v1, _ := s.Set(node, simpleResources("l1"))
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.syncAll(v1)

	// Only the listeners change, so only LDS is sent.
	v2, err := s.Set(node, simpleResources("bad"))
	if err != nil {
		t.Fatal(err)
	}
	lds := f.recv(resource.ListenerType)
	if lds.GetVersionInfo() != v2 {
		t.Fatalf("LDS version %q, want %q", lds.GetVersionInfo(), v2)
	}
	const envoyMsg = "Error adding/updating listener(s) bad: unknown filter"
	// Like Envoy: a NACK carries the last accepted version and the rejected nonce.
	f.request(resource.ListenerType, v1, lds.GetNonce(), nil, envoyMsg)

	err = s.Wait(ctxTimeout(t, 5*time.Second), node, v2)
	if err == nil {
		t.Fatal("Wait succeeded for a NACKed version")
	}
	for _, want := range []string{node, "LDS", envoyMsg, "NACK"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Wait error %q lacks %q", err, want)
		}
	}
	waitEvent(t, events, "nack "+node+" LDS "+v2)
	if got := s.LastACKed(node); got["LDS"] != v1 || got["CDS"] != v1 {
		t.Fatalf("LastACKed = %v, want LDS=%s CDS=%s", got, v1, v1)
	}

	// No resend loop: after the NACK the cache must park a watch for LDS
	// rather than answer it with the rejected version again. Both the CDS and
	// the LDS watch are then open.
	waitWatches(t, s, node, 2)

	// A Set that changes only the clusters leaves LDS at the rejected
	// version: CDS is sent, LDS is not resent, and Wait for the new version
	// fails at once with the NACK (the proxy will never run its LDS).
	v3, _ := s.Set(node, resourcesOf([]string{"bad"}, []string{"c1", "c2"}))
	if got := s.TypeVersions(node, v3); got["LDS"] != v2 || got["CDS"] != v3 {
		t.Fatalf("TypeVersions(%s) = %v, want LDS=%s CDS=%s", v3, got, v2, v3)
	}
	cds := f.recv(resource.ClusterType)
	if cds.GetVersionInfo() != v3 {
		t.Fatalf("CDS version %q, want %q", cds.GetVersionInfo(), v3)
	}
	f.ack(cds)
	waitEvent(t, events, "ack "+node+" CDS "+v3)
	waitWatches(t, s, node, 2)
	f.noMore()
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v3); err == nil || !strings.Contains(err.Error(), envoyMsg) {
		t.Fatalf("Wait(v3) with the rejected LDS unchanged = %v, want the NACK", err)
	}

	// A fix goes through: the next LDS response is the fixed version, not
	// the rejected one again.
	v4, _ := s.Set(node, resourcesOf([]string{"good"}, []string{"c1", "c2"}))
	if r := f.recv(resource.ListenerType); r.GetVersionInfo() != v4 {
		t.Fatalf("after NACK got LDS version %q, want %q (rejected version resent?)", r.GetVersionInfo(), v4)
	} else {
		f.ack(r)
	}
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v4); err != nil {
		t.Fatal(err)
	}
	f.noMore()
	// The NACKed versions stay failed even though a later one is running.
	for _, v := range []string{v2, v3} {
		if err := s.Wait(ctxTimeout(t, time.Second), node, v); err == nil || !strings.Contains(err.Error(), envoyMsg) {
			t.Fatalf("Wait(%s) after %s = %v, want the NACK", v, v4, err)
		}
	}
	// A later listener change is not born failed: the NACK was superseded.
	v5, _ := s.Set(node, resourcesOf([]string{"good", "l5"}, []string{"c1", "c2"}))
	f.ack(f.recv(resource.ListenerType))
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v5); err != nil {
		t.Fatal(err)
	}
}

// waitWatches waits until the cache holds n open watches for node: the fact
// that it parked the requests instead of answering them.
func waitWatches(t testing.TB, s *Server, node string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// Secrets have a cache of their own (NewServer).
	watches := func() int {
		n := 0
		for _, c := range []cachev3.SnapshotCache{s.cache, s.secrets} {
			if st := c.GetStatusInfo(node); st != nil {
				n += st.GetNumWatches()
			}
		}
		return n
	}
	for watches() != n {
		if time.Now().After(deadline) {
			t.Fatalf("caches have %d watches for %s, want %d: a request was answered instead of parked", watches(), node, n)
		}
		<-tick.C
	}
}

func TestServerStaleNonce(t *testing.T) {
	s, sock, events := testServer(t)
	const node = "ns/a"
	v1, _ := s.Set(node, simpleResources("l1"))
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.ack(f.recv(resource.ClusterType))
	old := f.recv(resource.ListenerType)
	f.ack(old)
	waitEvent(t, events, "ack "+node+" LDS "+v1)

	// Listeners and clusters change: the CDS ACK below is a barrier.
	v2, _ := s.Set(node, resourcesOf([]string{"l1", "l2"}, []string{"c1", "c2"}))
	cds := f.recv(resource.ClusterType)
	lds := f.recv(resource.ListenerType)
	if lds.GetNonce() == old.GetNonce() {
		t.Fatal("nonces must differ")
	}
	// Requests carrying the superseded nonce, even claiming v2 or carrying an
	// error, neither ACK nor NACK v2.
	f.request(resource.ListenerType, v2, old.GetNonce(), nil, "")
	f.request(resource.ListenerType, v1, old.GetNonce(), nil, "stale complaint")
	// A later request on the same stream is a barrier: callbacks run in order.
	f.ack(cds)
	waitEvent(t, events, "ack "+node+" CDS "+v2)
	if got := s.LastACKed(node)["LDS"]; got != v1 {
		t.Fatalf("stale nonce changed LDS ACK state: LDS=%q, want %q", got, v1)
	}
	err := s.Wait(ctxTimeout(t, 200*time.Millisecond), node, v2)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(v2) after stale requests = %v, want a deadline error", err)
	}
	f.ack(lds)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
	// v2 running implies v1 is superseded: waiting for v1 is satisfied.
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}
}

func TestServerReconnect(t *testing.T) {
	s, sock, events := testServer(t)
	const node = "ns/a"
	v1, _ := s.Set(node, simpleResources("l1"))
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.syncAll(v1)
	f.cancel()
	waitEvent(t, events, "disconnected "+node)

	// Only the listeners changed while the proxy was away; the caller does
	// nothing else.
	v2, _ := s.Set(node, simpleResources("l1", "l2"))
	cur := s.TypeVersions(node, v2)
	if cur["LDS"] != v2 || cur["CDS"] != v1 {
		t.Fatalf("TypeVersions = %v, want LDS=%s CDS=%s", cur, v2, v1)
	}
	// Envoy reconnects announcing the versions it runs. A new stream is
	// served the full current snapshot, CDS included although the proxy
	// announces CDS's current version.
	f2 := dialFake(t, sock, node)
	f2.subscribe(v1)
	f2.syncTo(cur)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
	// Reconnecting with exactly the current versions also gets everything.
	f2.cancel()
	waitEvent(t, events, "disconnected "+node)
	f3 := dialFake(t, sock, node)
	f3.subscribeAt(cur["LDS"], cur["CDS"])
	f3.syncTo(cur)
	// A restarted Envoy (no version) gets the current snapshot too.
	f4 := dialFake(t, sock, node)
	f4.subscribe("")
	f4.syncTo(cur)
}

// A proxy that reconnects to a restarted control plane asks with the
// version it ran, and may ask before the new server has a snapshot. The
// cache answers such a waiting watch only when the snapshot's version
// differs from the one asked with: a new server counting from 1 again
// never answered a proxy that ran version 1 (TestReliabilityControlPlaneRestart
// failed so under load). AfterVersionsOf makes the new versions higher.
func TestServerRestartVersionsDiffer(t *testing.T) {
	old, sock, events := testServer(t)
	const node = "ns/a"
	v1, _ := old.Set(node, simpleResources("l1"))
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.syncAll(v1)
	old.Stop()
	waitEvent(t, events, "disconnected "+node)

	s := NewServer(AfterVersionsOf(old))
	f2 := dialFake(t, serve(t, s), node)
	f2.subscribe(v1) // before the new server has a snapshot
	waitWatches(t, s, node, 2)
	v, err := s.Set(node, simpleResources("l1"))
	if err != nil {
		t.Fatal(err)
	}
	if v == v1 {
		t.Fatalf("restarted server reuses version %s", v)
	}
	f2.syncAll(v)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v); err != nil {
		t.Fatal(err)
	}
}

func TestServerWaitDeadline(t *testing.T) {
	s, sock, events := testServer(t)
	v1, _ := s.Set("ns/ghost", simpleResources("l1"))
	err := s.Wait(ctxTimeout(t, 100*time.Millisecond), "ns/ghost", v1)
	if err == nil || !strings.Contains(err.Error(), "never connected") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want never connected + deadline", err)
	}

	const node = "ns/slow"
	v, _ := s.Set(node, simpleResources("l1"))
	f := dialFake(t, sock, node)
	f.subscribe("")
	f.ack(f.recv(resource.ClusterType))
	waitEvent(t, events, "ack "+node+" CDS "+v)
	err = s.Wait(ctxTimeout(t, 100*time.Millisecond), node, v)
	for _, want := range []string{node, "LDS missing", "connected", "CDS=1", "LDS=nothing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Wait = %v, want it to mention %q", err, want)
		}
	}
	if err := s.Wait(ctxTimeout(t, time.Second), node, "99"); err == nil || !strings.Contains(err.Error(), "no version") {
		t.Errorf("Wait(unknown version) = %v", err)
	}
}

func TestServerSetInconsistent(t *testing.T) {
	s := NewServer()
	defer s.Stop()
	// A listener whose HTTP connection manager uses RDS route "missing".
	h, err := anypb.New(&hcm.HttpConnectionManager{
		StatPrefix: "in",
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: "missing",
			ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := &listener.Listener{Name: "l1", FilterChains: []*listener.FilterChain{{
		Filters: []*listener.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: h}}},
	}}}
	_, err = s.Set("ns/a", &translate.Resources{Listeners: []*listener.Listener{l}})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Set = %v, want an inconsistency error naming the route", err)
	}
	if _, err := s.Set("", nil); err == nil {
		t.Fatal("Set with empty node succeeded")
	}
}

// TestServerDeltaACK: a proxy on the incremental (delta) ADS stream is
// tracked too. Delta sends nothing for a type whose content did not change;
// that type kept its version, so the ACK it had satisfies Wait.
func TestServerDeltaACK(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/delta"
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctxTimeout(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Set(node, simpleResources("l1"))
	n := &core.Node{Id: node}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: n, TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
		n = nil
	}
	ackNext := func(want string) {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSystemVersionInfo() != want {
			t.Fatalf("delta %s version %q, want %q", shortType(r.GetTypeUrl()), r.GetSystemVersionInfo(), want)
		}
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	ackNext(v1)
	ackNext(v1)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v1); err != nil {
		t.Fatal(err)
	}
	// Only the listeners change: only LDS is sent.
	v2, _ := s.Set(node, simpleResources("l1", "l2"))
	ackNext(v2)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2); err != nil {
		t.Fatal(err)
	}
	if got := s.LastACKed(node); got["LDS"] != v2 || got["CDS"] != v1 {
		t.Fatalf("LastACKed = %v", got)
	}
	// Only the clusters change: only CDS is sent, at the new version (the
	// ackNext above would have failed on a CDS response at v2).
	v2b, _ := s.Set(node, resourcesOf([]string{"l1", "l2"}, []string{"c1", "c2"}))
	ackNext(v2b)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v2b); err != nil {
		t.Fatal(err)
	}
	if got := s.LastACKed(node); got["LDS"] != v2 || got["CDS"] != v2b {
		t.Fatalf("LastACKed = %v, want LDS=%s CDS=%s", got, v2, v2b)
	}
	// A delta NACK fails Wait with the message, and the delta cache does not
	// resend the rejected resources: the next LDS response is the next version.
	v3, _ := s.Set(node, resourcesOf([]string{"l1", "l2", "bad"}, []string{"c1", "c2"}))
	r, err := stream.Recv()
	if err != nil || r.GetSystemVersionInfo() != v3 {
		t.Fatalf("Recv = %v, %v; want LDS %s", r, err, v3)
	}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "delta says no"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v3); err == nil || !strings.Contains(err.Error(), "delta says no") {
		t.Fatalf("Wait(v3) = %v, want the NACK", err)
	}
	v4, _ := s.Set(node, resourcesOf([]string{"l1"}, []string{"c1", "c2"}))
	ackNext(v4)
	if err := s.Wait(ctxTimeout(t, 5*time.Second), node, v4); err != nil {
		t.Fatal(err)
	}
}

// TestServerSecretsSubset: Envoy asks for its clusters' secrets before it
// has the listeners that name the others (a gateway's credential). The
// answer must not wait for a request naming every secret of the snapshot
// (ADS mode would park it until Envoy's 15 s initial-fetch timeout); the
// rest come when a later request names them.
func TestServerSecretsSubset(t *testing.T) {
	s, sock, _ := testServer(t)
	const node = "ns/a"
	r := simpleResources("l1")
	r.Secrets = []*tlsv3.Secret{{Name: "default"}, {Name: "ROOTCA"}, {Name: "kubernetes://cred"}}
	v1, err := s.Set(node, r)
	if err != nil {
		t.Fatal(err)
	}
	f := dialFake(t, sock, node)
	f.request(resource.SecretType, "", "", []string{"default", "ROOTCA"}, "")
	first := f.recv(resource.SecretType)
	if first.GetVersionInfo() != v1 || len(first.GetResources()) != 2 {
		t.Fatalf("SDS answer for 2 of 3 secrets: version %q with %d secrets, want %q with 2", first.GetVersionInfo(), len(first.GetResources()), v1)
	}
	f.request(resource.SecretType, first.GetVersionInfo(), first.GetNonce(), []string{"default", "ROOTCA", "kubernetes://cred"}, "")
	if all := f.recv(resource.SecretType); len(all.GetResources()) != 3 {
		t.Fatalf("SDS answer once every secret is named: %d secrets, want 3", len(all.GetResources()))
	}
}
