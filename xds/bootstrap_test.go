package xds

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/internal/envoytest"
)

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name string
		opts BootstrapOptions
		want []string // substrings of the JSON
	}{
		{
			name: "defaults: unix sockets",
			opts: BootstrapOptions{NodeID: "ns/a", Cluster: "a.ns", Metadata: map[string]string{"ISTIO_VERSION": "1.32"}},
			want: []string{`"id":"ns/a"`, `"cluster":"a.ns"`, `"ISTIO_VERSION":"1.32"`, DefaultXDSSocket, DefaultAdminSocket,
				`"mode":432`, `"apiType":"GRPC"`, `"transportApiVersion":"V3"`, `"setNodeOnFirstMessageOnly":true`,
				`"resourceApiVersion":"V3"`, `"type":"STATIC"`, `"http2ProtocolOptions"`, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"},
		},
		{
			name: "tcp xds and admin",
			opts: BootstrapOptions{NodeID: "ns/a", Cluster: "a.ns", XDSAddress: "127.0.0.1:18000", AdminTCP: true},
			want: []string{`"portValue":18000`, `"portValue":15000`, `"address":"127.0.0.1"`, `"type":"STATIC"`},
		},
		{
			name: "xds by host name uses DNS",
			opts: BootstrapOptions{NodeID: "ns/a", Cluster: "a.ns", XDSAddress: "host.docker.internal:18000"},
			want: []string{`"type":"STRICT_DNS"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Bootstrap(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			// Round trip: it parses back into a valid Bootstrap.
			var b bootstrap.Bootstrap
			if err := protojson.Unmarshal(out, &b); err != nil {
				t.Fatal(err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			//lint:ignore SA1019 asserts the deprecated field is unset too
			if b.GetAdmin().GetAccessLog() != nil || b.GetAdmin().GetAccessLogPath() != "" {
				t.Error("admin access log configured")
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(compact.String(), w) {
					t.Errorf("bootstrap lacks %s:\n%s", w, out)
				}
			}
			// YAML is the same document.
			tt.opts.YAML = true
			y, err := Bootstrap(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(y)
			if err != nil {
				t.Fatal(err)
			}
			var a, c any
			if err := json.Unmarshal(js, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &c); err != nil {
				t.Fatal(err)
			}
			ja, _ := json.Marshal(a)
			jc, _ := json.Marshal(c)
			if string(ja) != string(jc) {
				t.Errorf("YAML and JSON differ:\n%s\n%s", ja, jc)
			}
		})
	}
}

func TestBootstrapErrors(t *testing.T) {
	for _, o := range []BootstrapOptions{
		{Cluster: "a.ns"},
		{NodeID: "ns/a"},
		{NodeID: "ns/a", Cluster: "a.ns", XDSSocket: "/x", XDSAddress: "1.2.3.4:5"},
		{NodeID: "ns/a", Cluster: "a.ns", AdminSocket: "/x", AdminTCP: true},
		{NodeID: "ns/a", Cluster: "a.ns", XDSAddress: "nohostport"},
	} {
		if _, err := Bootstrap(o); err == nil {
			t.Errorf("Bootstrap(%+v) succeeded", o)
		}
	}
}

func TestBootstrapCommandLine(t *testing.T) {
	got := CommandLine(BootstrapOptions{ConfigPath: "/etc/envoy.json"})
	want := []string{"-c", "/etc/envoy.json", "--concurrency", "1", "--drain-time-s", "0",
		"--parent-shutdown-time-s", "2", "--disable-hot-restart",
		"--file-flush-interval-msec", "1000", "--file-flush-min-size-kb", "0", "--log-level", "warning"}
	if !slices.Equal(got, want) {
		t.Fatalf("CommandLine = %q, want %q", got, want)
	}
}

// TestBootstrapEnvoyValidates asks the real Envoy to load the bootstrap and
// the command line (--mode validate: parse and check, serve nothing).
func TestBootstrapEnvoyValidates(t *testing.T) {
	envoy := envoytest.Binary(t)
	dir := t.TempDir()
	for _, o := range []BootstrapOptions{
		{NodeID: "ns/a", Cluster: "a.ns", XDSSocket: filepath.Join(dir, "xds.sock"), AdminSocket: filepath.Join(dir, "admin.sock")},
		{NodeID: "ns/a", Cluster: "a.ns", XDSAddress: "127.0.0.1:18000", AdminTCP: true, YAML: true},
	} {
		out, err := Bootstrap(o)
		if err != nil {
			t.Fatal(err)
		}
		o.ConfigPath = filepath.Join(dir, "bootstrap.json")
		if o.YAML {
			o.ConfigPath = filepath.Join(dir, "bootstrap.yaml")
		}
		if err := os.WriteFile(o.ConfigPath, out, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append(CommandLine(o), "--mode", "validate")
		if b, err := exec.Command(envoy, args...).CombinedOutput(); err != nil {
			t.Fatalf("envoy %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
}
