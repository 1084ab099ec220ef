package translate

import (
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshtls/meshtls/mesh"
)

const registryOnly = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
`

// outboundTrafficPolicy REGISTRY_ONLY sends what no service claims to
// BlackHoleCluster (virtualOutbound's catch-all, each port listener's
// default chain) and answers unknown HTTP hosts 502 from block_all;
// ALLOW_ANY passes them through (listener_builder.go,
// buildOutboundCatchAllNetworkFiltersOnly; httproute.go, buildCatchAllVirtualHost).
func TestOutboundTrafficPolicy(t *testing.T) {
	// A Sidecar's outboundTrafficPolicy overrides the mesh's
	// (sidecar.go initSidecarScopeInternalIndexes).
	sidecar := func(mode string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec: {outboundTrafficPolicy: {mode: " + mode + "}}\n"
	}
	for _, tt := range []struct {
		name, extra, cluster, vhost string
	}{
		{"mesh default", "", PassthroughCluster, "allow_any"},
		{"mesh REGISTRY_ONLY", registryOnly, BlackHoleCluster, "block_all"},
		{"Sidecar REGISTRY_ONLY", sidecar("REGISTRY_ONLY"), BlackHoleCluster, "block_all"},
		{"Sidecar ALLOW_ANY over mesh REGISTRY_ONLY", registryOnly + sidecar("ALLOW_ANY"), PassthroughCluster, "allow_any"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := translate(t, "sidecar.yaml", tt.extra, "a")
			vo := findListener(t, res, VirtualOutboundListener)
			if got := chainTCPProxy(t, vo.GetFilterChains()[0]).GetCluster(); got != tt.cluster {
				t.Errorf("virtualOutbound catch-all to %s, want %s", got, tt.cluster)
			}
			l := findListener(t, res, OutboundListenerName(9000))
			if got := chainTCPProxy(t, l.GetDefaultFilterChain()).GetCluster(); got != tt.cluster {
				t.Errorf("%s default chain to %s, want %s", l.GetName(), got, tt.cluster)
			}
			rc := findRoute(t, res, OutboundRouteName(8080))
			last := rc.GetVirtualHosts()[len(rc.GetVirtualHosts())-1]
			if last.GetName() != tt.vhost || last.GetDomains()[0] != "*" {
				t.Fatalf("catch-all virtual host %s %v, want %s", last.GetName(), last.GetDomains(), tt.vhost)
			}
			r := last.GetRoutes()[0]
			if tt.vhost == "block_all" {
				if r.GetDirectResponse().GetStatus() != 502 {
					t.Errorf("block_all answers %v, want 502", r.GetAction())
				}
			} else if r.GetRoute().GetCluster() != PassthroughCluster {
				t.Errorf("allow_any routes %v", r.GetAction())
			}
		})
	}
}

func meshConfigMap(yaml string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    " +
		strings.ReplaceAll(strings.TrimRight(yaml, "\n"), "\n", "\n    ") + "\n"
}

// enableAutoMtls: false leaves a client without DestinationRule tls in
// plaintext, even to a sidecar (cluster_tls.go, buildUpstreamTLSSettings).
func TestEnableAutoMtls(t *testing.T) {
	const c = "outbound|8080||b.default.svc.cluster.local"
	res, _ := translate(t, "sidecar.yaml", "", "a")
	if len(findCluster(t, res, c).GetTransportSocketMatches()) == 0 {
		t.Fatalf("default: %s has no auto mTLS transport socket matches", c)
	}
	res, _ = translate(t, "sidecar.yaml", meshConfigMap("enableAutoMtls: false"), "a")
	cl := findCluster(t, res, c)
	if cl.GetTransportSocketMatches() != nil || cl.GetTransportSocket() != nil {
		t.Errorf("enableAutoMtls false: %s still originates TLS", c)
	}
	if d := res.Decisions[c].DestinationRule; !strings.Contains(d, "enableAutoMtls: false") {
		t.Errorf("decision %q does not name the mesh config", d)
	}
}

// rootNamespace moves mesh-wide policy: a PeerAuthentication in the root
// namespace applies mesh-wide, one in istio-system then only there.
func TestRootNamespace(t *testing.T) {
	pa := strings.ReplaceAll(meshPA("STRICT"), "namespace: istio-system", "namespace: mesh-root")
	m := loadMesh(t, "sidecar.yaml", meshConfigMap("rootNamespace: mesh-root")+"---\n"+pa)
	b, _ := m.Workload("b")
	if got := m.EffectiveMTLS(b, 8080); got != mesh.ModeStrict {
		t.Errorf("PA in rootNamespace mesh-root: b is %v, want STRICT", got)
	}
	m = loadMesh(t, "sidecar.yaml", meshConfigMap("rootNamespace: mesh-root")+"---\n"+meshPA("STRICT"))
	if got := m.EffectiveMTLS(b, 8080); got == mesh.ModeStrict {
		t.Errorf("PA in istio-system with rootNamespace mesh-root applied mesh-wide")
	}
}

// meshMTLS sets inbound mTLS's floor and ciphers (authn/utils BuildInboundTLS);
// tlsDefaults the curves and ciphers of SIMPLE origination (cluster_tls.go,
// applyTLSDefaults).
func TestMeshTLSSettings(t *testing.T) {
	cm := meshConfigMap("meshMTLS: {minProtocolVersion: TLSV1_3, cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384]}\ntlsDefaults: {ecdhCurves: [P-256], cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256]}")
	dr := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b-simple}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy: {tls: {mode: SIMPLE}}
`
	res, _ := translate(t, "sidecar.yaml", cm+"---\n"+dr, "b")
	l := findListener(t, res, VirtualInboundListener)
	n := 0
	for _, fc := range l.GetFilterChains() {
		if fc.GetTransportSocket() == nil || !strings.HasPrefix(fc.GetName(), "inbound|") {
			continue
		}
		n++
		p := downstreamTLS(t, fc).GetCommonTlsContext().GetTlsParams()
		if p.GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_3 || strings.Join(p.GetCipherSuites(), ",") != "ECDHE-RSA-AES256-GCM-SHA384" {
			t.Errorf("%s: tls params %v", fc.GetName(), p)
		}
	}
	if n == 0 {
		t.Fatal("no inbound mTLS chain")
	}
	res, _ = translate(t, "sidecar.yaml", cm+"---\n"+dr, "a")
	p := upstreamTLS(t, findCluster(t, res, "outbound|8080||b.default.svc.cluster.local").GetTransportSocket()).GetCommonTlsContext().GetTlsParams()
	if strings.Join(p.GetEcdhCurves(), ",") != "P-256" || strings.Join(p.GetCipherSuites(), ",") != "ECDHE-ECDSA-AES128-GCM-SHA256" {
		t.Errorf("SIMPLE origination tls params %v", p)
	}
}
