package translate

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
)

var (
	testSetOnce sync.Once
	testSet     *certs.Set
)

func testStore(t *testing.T) *certs.Store {
	t.Helper()
	testSetOnce.Do(func() {
		s, err := certs.NewSet()
		if err != nil {
			panic(err)
		}
		testSet = s
	})
	return certs.NewStore(testSet)
}

// loadMesh parses the fixture file plus extra YAML documents.
func loadMesh(t *testing.T, fixture, extra string) *mesh.Mesh {
	t.Helper()
	data, err := os.ReadFile("testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		data = append(data, []byte("\n---\n"+extra)...)
	}
	m, err := mesh.Parse(fixture, data)
	if err != nil {
		t.Fatalf("parse %s: %v", fixture, err)
	}
	return m
}

func testEnv(t *testing.T, m *mesh.Mesh) *Env {
	return &Env{Addrs: m.AddressPlan(netip.MustParsePrefix("10.89.0.0/24")), Certs: testStore(t)}
}

// translate parses fixture+extra and translates proxy (a workload ref).
func translate(t *testing.T, fixture, extra, proxy string) (*Resources, *mesh.Mesh) {
	t.Helper()
	m := loadMesh(t, fixture, extra)
	w, ok := m.Workload(proxy)
	if !ok {
		t.Fatalf("no workload %s", proxy)
	}
	res, err := Translate(m, w, testEnv(t, m))
	if err != nil {
		t.Fatalf("Translate(%s): %v", proxy, err)
	}
	return res, m
}

func translateErr(t *testing.T, fixture, extra, proxy string) error {
	t.Helper()
	m := loadMesh(t, fixture, extra)
	w, ok := m.Workload(proxy)
	if !ok {
		t.Fatalf("no workload %s", proxy)
	}
	_, err := Translate(m, w, testEnv(t, m))
	return err
}

func findListener(t *testing.T, r *Resources, name string) *listener.Listener {
	t.Helper()
	for _, l := range r.Listeners {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no listener %q; have %v", name, names(r.Listeners))
	return nil
}

func findCluster(t *testing.T, r *Resources, name string) *cluster.Cluster {
	t.Helper()
	for _, c := range r.Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cluster %q; have %v", name, names(r.Clusters))
	return nil
}

func findRoute(t *testing.T, r *Resources, name string) *route.RouteConfiguration {
	t.Helper()
	for _, rc := range r.Routes {
		if rc.Name == name {
			return rc
		}
	}
	t.Fatalf("no route config %q", name)
	return nil
}

func findChain(t *testing.T, l *listener.Listener, name string) *listener.FilterChain {
	t.Helper()
	chains := l.FilterChains
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(slices.Clip(chains), d)
	}
	for _, fc := range chains {
		if fc.Name == name {
			return fc
		}
	}
	t.Fatalf("listener %s: no filter chain %q; have %v", l.Name, name, names(chains))
	return nil
}

func names[T interface{ GetName() string }](xs []T) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.GetName())
	}
	return out
}

// chainNamesWithPrefix lists chain names starting with prefix, in order.
func chainNamesWithPrefix(l *listener.Listener, prefix string) []string {
	var out []string
	for _, fc := range l.FilterChains {
		if strings.HasPrefix(fc.Name, prefix) {
			out = append(out, fc.Name)
		}
	}
	return out
}

func unmarshal[T proto.Message](t *testing.T, a interface {
	UnmarshalTo(proto.Message) error
}, into T) T {
	t.Helper()
	if err := a.UnmarshalTo(into); err != nil {
		t.Fatal(err)
	}
	return into
}

func downstreamTLS(t *testing.T, fc *listener.FilterChain) *tlsv3.DownstreamTlsContext {
	t.Helper()
	if fc.TransportSocket == nil {
		return nil
	}
	return unmarshal(t, fc.TransportSocket.GetTypedConfig(), &tlsv3.DownstreamTlsContext{})
}

func upstreamTLS(t *testing.T, ts *core.TransportSocket) *tlsv3.UpstreamTlsContext {
	t.Helper()
	if ts == nil || ts.Name != "envoy.transport_sockets.tls" {
		return nil
	}
	return unmarshal(t, ts.GetTypedConfig(), &tlsv3.UpstreamTlsContext{})
}

func chainHCM(t *testing.T, fc *listener.FilterChain) *hcm.HttpConnectionManager {
	t.Helper()
	for _, f := range fc.Filters {
		if f.Name == "envoy.filters.network.http_connection_manager" {
			return unmarshal(t, f.GetTypedConfig(), &hcm.HttpConnectionManager{})
		}
	}
	return nil
}

func chainTCPProxy(t *testing.T, fc *listener.FilterChain) *tcpproxy.TcpProxy {
	t.Helper()
	for _, f := range fc.Filters {
		if f.Name == "envoy.filters.network.tcp_proxy" {
			return unmarshal(t, f.GetTypedConfig(), &tcpproxy.TcpProxy{})
		}
	}
	return nil
}

func httpOptions(t *testing.T, c *cluster.Cluster) *httpopts.HttpProtocolOptions {
	t.Helper()
	a, ok := c.TypedExtensionProtocolOptions[httpOptsKey]
	if !ok {
		return nil
	}
	return unmarshal(t, a, &httpopts.HttpProtocolOptions{})
}

func sanStrings(ms []*tlsv3.SubjectAltNameMatcher) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.SanType.String()+":"+m.GetMatcher().GetExact())
	}
	return out
}

func endpointHasTLSMode(c *cluster.Cluster, addr string) (found, labelled bool) {
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range lle.LbEndpoints {
			if lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() != addr {
				continue
			}
			md := lb.GetMetadata().GetFilterMetadata()[TransportSocketMatchNS]
			return true, md.GetFields()[TLSModeMetadataKey].GetStringValue() == TLSModeIstio
		}
	}
	return false, false
}

func meshPA(mode string) string {
	return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: ` + mode + `}
`
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// fixtureFiles are our fixtures plus the scenario bundles.
func fixtureFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"testdata/*.yaml", "../scenarios/testdata/*.yaml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

func loadFile(t *testing.T, path string) *mesh.Mesh {
	t.Helper()
	m, err := mesh.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return m
}
