package translate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/internal/envoytest"
)

// staticBootstrap embeds a proxy's translated config as static resources:
// RDS is inlined so Envoy checks the routes too, and every secret is a
// static secret so Envoy parses the certificates.
func staticBootstrap(t *testing.T, id string, r *Resources, adminSock string) *bootstrap.Bootstrap {
	t.Helper()
	b := &bootstrap.Bootstrap{
		Node:            &core.Node{Id: id, Cluster: "validate"},
		Admin:           &bootstrap.Admin{Address: &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: adminSock}}}},
		StaticResources: &bootstrap.Bootstrap_StaticResources{},
	}
	routes := map[string]*route.RouteConfiguration{}
	for _, rc := range r.Routes {
		routes[rc.Name] = rc
	}
	for _, l := range r.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				if f.Name != "envoy.filters.network.http_connection_manager" {
					continue
				}
				h := &hcm.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					t.Fatal(err)
				}
				if rds := h.GetRds(); rds != nil {
					rc, ok := routes[rds.RouteConfigName]
					if !ok {
						t.Fatalf("listener %s references missing route %q", l.Name, rds.RouteConfigName)
					}
					h.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: rc}
					f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(h)}
				}
			}
		}
		for _, fc := range l.FilterChains {
			fc.TransportSocket = staticSDS(t, fc.TransportSocket)
		}
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
	}
	for _, c := range r.Clusters {
		c = proto.Clone(c).(*cluster.Cluster)
		c.TransportSocket = staticSDS(t, c.TransportSocket)
		for _, m := range c.TransportSocketMatches {
			m.TransportSocket = staticSDS(t, m.TransportSocket)
		}
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, c)
	}
	b.StaticResources.Secrets = append(b.StaticResources.Secrets, r.Secrets...)
	return b
}

// staticSDS points SDS references at the static secrets: Envoy 1.40
// crashes in --mode validate on ADS-sourced SDS, and static secrets make it
// parse the certificates.
func staticSDS(t *testing.T, ts *core.TransportSocket) *core.TransportSocket {
	t.Helper()
	if ts == nil || ts.Name != "envoy.transport_sockets.tls" {
		return ts
	}
	var common *tlsv3.CommonTlsContext
	var msg proto.Message
	if ts.GetTypedConfig().MessageIs(&tlsv3.DownstreamTlsContext{}) {
		d := &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(d); err != nil {
			t.Fatal(err)
		}
		common, msg = d.CommonTlsContext, d
	} else {
		u := &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
			t.Fatal(err)
		}
		common, msg = u.CommonTlsContext, u
	}
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		s.SdsConfig = nil
	}
	if s := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		s.SdsConfig = nil
	}
	return tlsSocket(msg)
}

// Envoy itself accepts every proxy's config (--mode validate): catches
// what protoc-gen-validate cannot, e.g. unknown access log operators,
// duplicate filter chain matches, bad regexes, unparsable certificates.
func TestEnvoyValidatesTranslation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Envoy")
	}
	envoy := envoytest.Binary(t)
	for _, f := range fixtureFiles(t) {
		m := loadFile(t, f)
		env := testEnv(t, m)
		for _, w := range m.Workloads {
			if !w.HasProxy() {
				continue
			}
			t.Run(f+"/"+w.ID(), func(t *testing.T) {
				res, err := Translate(m, w, env)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				b := staticBootstrap(t, w.ID(), res, filepath.Join(dir, "admin.sock"))
				js, err := protojson.Marshal(b)
				if err != nil {
					t.Fatal(err)
				}
				// Envoy reads file paths at load: the CA files every
				// container has under /etc/meshtls/ca live in dir here.
				caDir := filepath.Join(dir, "ca")
				if err := certs.WriteCAs(caDir, env.Certs.Set()); err != nil {
					t.Fatal(err)
				}
				js = []byte(strings.ReplaceAll(string(js), "/etc/meshtls/ca/", caDir+"/"))
				cfg := filepath.Join(dir, "envoy.json")
				if d := os.Getenv("MESHTLS_KEEP_CONFIG"); d != "" {
					_ = os.WriteFile(filepath.Join(d, strings.ReplaceAll(w.ID(), "/", "_")+".json"), js, 0o600)
				}
				if err := os.WriteFile(cfg, js, 0o600); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, envoy, "--mode", "validate", "-c", cfg, "-l", "error", "--base-id-path", filepath.Join(dir, "base-id")).CombinedOutput()
				if err != nil {
					t.Fatalf("envoy --mode validate: %v\n%s", err, lastLines(string(out), 30))
				}
			})
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
