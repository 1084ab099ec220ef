package trace

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// The synthetic mesh every case uses.
const (
	ipA   = "10.0.0.2" // default/a, sidecar
	ipB   = "10.0.0.3" // default/b, sidecar
	ipN   = "10.0.0.4" // default/naked, no sidecar
	ipGW  = "10.0.0.5" // istio-system/ingress, gateway
	ipExt = "10.0.0.6" // default/ext, no sidecar, app terminates TLS
	ipC   = "10.0.0.7" // default/c, sidecar, app terminates TLS

	idA, idB, idN, idGW, idExt, idC = "default/a", "default/b", "default/naked", "istio-system/ingress", "default/ext", "default/c"
)

var (
	spiffeA  = mesh.SPIFFE("default", "a")
	spiffeB  = mesh.SPIFFE("default", "b")
	spiffeC  = mesh.SPIFFE("default", "c")
	spiffeGW = mesh.SPIFFE("istio-system", "ingress")
)

func testPods() map[netip.Addr]PodInfo {
	return map[netip.Addr]PodInfo{
		netip.MustParseAddr(ipA):   {ID: idA, Sidecar: true},
		netip.MustParseAddr(ipB):   {ID: idB, Sidecar: true},
		netip.MustParseAddr(ipN):   {ID: idN},
		netip.MustParseAddr(ipGW):  {ID: idGW, Gateway: true},
		netip.MustParseAddr(ipExt): {ID: idExt},
		netip.MustParseAddr(ipC):   {ID: idC, Sidecar: true},
	}
}

func ptr[T any](v T) *T { return &v }

// obs assembles Observations with the common parts filled in.
func obs(check mesh.Check, call pod.CallResult, flows map[string][]pod.Flow, logs map[string][]accesslog.Entry) *Observations {
	return &Observations{Scenario: "unit", Check: &check, Call: &call, Flows: flows, AccessLogs: logs, Pods: testPods()}
}

func TestBuild(t *testing.T) {
	const (
		istioSNI8080 = "outbound_.8080_._.b.default.svc.cluster.local"
		istioSNI9000 = "outbound_.9000_._.b.default.svc.cluster.local"
		istioSNIc    = "outbound_.8443_._.c.default.svc.cluster.local"
		verifyFailed = "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
	)
	istioHTTPALPN := []string{"istio-http/1.1", "istio", "http/1.1"}
	istioTCPALPN := []string{"istio-peer-exchange", "istio"}

	tests := []struct {
		name       string
		obs        *Observations
		wantResult outcome.Result
		wantWire   []outcome.Wire
		wantPeer   string
		wantReason []string // substrings
		wantPath   []string // hop endpoints: from>to per hop
		check      func(t *testing.T, r *Result)
	}{
		{
			name: "plaintext between pods without sidecars",
			obs: obs(mesh.Check{Name: "n-to-ext", From: "naked", To: "http://ext.default.svc.cluster.local:8080/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipN + ":40000", RemoteAddr: ipExt + ":8080",
					Report: &pod.Report{Workload: idExt, Protocol: "HTTP/1.1", RemoteAddr: ipN + ":40000"}},
				map[string][]pod.Flow{
					idN:   {{Src: ipN + ":40000", Dst: ipExt + ":8080", Kind: "plaintext", Preview: "GET / HTTP/1.1"}},
					idExt: {{Src: ipN + ":40000", Dst: ipExt + ":8080", Kind: "plaintext"}},
				}, nil),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.Plaintext}, wantPeer: outcome.PeerNone,
			wantPath: []string{idN + ">" + idExt},
			check: func(t *testing.T, r *Result) {
				want := []string{"capture:" + idN, "capture:" + idExt, "app:" + idExt}
				if !slices.Equal(r.Hops[0].Sources, want) {
					t.Errorf("sources = %v, want %v", r.Hops[0].Sources, want)
				}
			},
		},
		{
			// kube-proxy's DNAT in the client's pod: the app dialled a
			// cluster IP, its capture shows the endpoint it went to.
			name: "plain client dials a cluster IP",
			obs: obs(mesh.Check{Name: "n-to-ext-vip", From: "naked", To: "http://ext.default.svc.cluster.local:80/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipN + ":40002", RemoteAddr: "10.0.0.254:80",
					Report: &pod.Report{Workload: idExt, Protocol: "HTTP/1.1", RemoteAddr: ipN + ":40002"}},
				map[string][]pod.Flow{
					idN:   {{Src: ipN + ":40002", Dst: ipExt + ":8080", Kind: "plaintext", Preview: "GET / HTTP/1.1"}},
					idExt: {{Src: ipN + ":40002", Dst: ipExt + ":8080", Kind: "plaintext"}},
				}, nil),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.Plaintext}, wantPeer: outcome.PeerNone,
			wantPath: []string{idN + ">" + idExt},
			check: func(t *testing.T, r *Result) {
				h := r.Hops[0]
				if h.Dst != ipExt+":8080" || len(h.Notes) != 1 || !strings.Contains(h.Notes[0], "dialled 10.0.0.254:80") {
					t.Errorf("hop dst %s notes %q", h.Dst, h.Notes)
				}
				if want := []string{"capture:" + idN, "capture:" + idExt, "app:" + idExt}; !slices.Equal(h.Sources, want) {
					t.Errorf("sources = %v, want %v", h.Sources, want)
				}
			},
		},
		{
			// The same DNAT in a sidecar pod: the proxy's DNS cluster
			// resolved a Service's name to its cluster IP and originated
			// TLS; the captures hold the endpoint it went to, with the SNI.
			name: "sidecar proxy dials a cluster IP",
			obs: obs(mesh.Check{Name: "a-to-ext-vip", From: "a", To: "http://ext.default.svc.cluster.local:80/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipA + ":40003", RemoteAddr: "10.0.0.254:80",
					Report: &pod.Report{Workload: idExt, Protocol: "HTTP/1.1", TLS: &pod.TLSInfo{Version: "TLSv1.3", SNI: "ext.example"}}},
				map[string][]pod.Flow{
					idA:   {{Src: ipA + ":41000", Dst: ipExt + ":8443", Kind: "tls", SNI: "ext.example", TLSVersion: "TLSv1.3"}},
					idExt: {{Src: ipA + ":41000", Dst: ipExt + ":8443", Kind: "tls", SNI: "ext.example", TLSVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{idA: {{Direction: "outbound", DownstreamRemoteAddress: ipA + ":40003", DownstreamLocalAddress: "10.0.0.254:80",
					UpstreamCluster: "outbound|80||ext.default.svc.cluster.local", UpstreamHost: "10.0.0.254:8443", UpstreamLocalAddress: ipA + ":41000",
					UpstreamTLSVersion: "TLSv1.3", UpstreamPeerSubject: "CN=ext", ResponseCode: "200"}}}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.TLS}, wantPeer: outcome.PeerNone,
			wantPath: []string{idA + ">" + idExt},
			check: func(t *testing.T, r *Result) {
				h := r.Hops[0]
				if h.Dst != ipExt+":8443" || len(h.Notes) != 1 || !strings.Contains(h.Notes[0], "dialled 10.0.0.254:8443") {
					t.Errorf("hop dst %s notes %q", h.Dst, h.Notes)
				}
				if l := h.Layers[0]; l.SNI != "ext.example" {
					t.Errorf("layer = %+v, want the capture's SNI", l)
				}
			},
		},
		{
			name: "app TLS passed through a PERMISSIVE sidecar",
			obs: obs(mesh.Check{Name: "n-to-c-tls", From: "naked", To: "https://c.default.svc.cluster.local:8443/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipN + ":40001", RemoteAddr: ipC + ":8443",
					TLS:    &pod.TLSInfo{Version: "TLSv1.3", SNI: "c.default.svc.cluster.local", ALPN: "http/1.1"},
					Report: &pod.Report{Workload: idC, Protocol: "HTTP/1.1", TLS: &pod.TLSInfo{Version: "TLSv1.3", SNI: "c.default.svc.cluster.local"}}},
				map[string][]pod.Flow{
					idN: {{Src: ipN + ":40001", Dst: ipC + ":8443", Kind: "tls", SNI: "c.default.svc.cluster.local", ALPN: []string{"http/1.1"}, TLSVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{idC: {{Direction: "inbound", DownstreamRemoteAddress: ipN + ":40001", DownstreamLocalAddress: ipC + ":8443",
					UpstreamCluster: "inbound|8443||", UpstreamHost: ipC + ":8443", FilterChainName: "0.0.0.0_8443"}}}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.TLS}, wantPeer: outcome.PeerNone,
			check: func(t *testing.T, r *Result) {
				l := r.Hops[0].Layers[0]
				if l.TerminatedBy != ByApp || l.SNI != "c.default.svc.cluster.local" {
					t.Errorf("layer = %+v, want terminated by app with the client's SNI", l)
				}
			},
		},
		{
			name: "sidecar mTLS over HTTP",
			obs: obs(mesh.Check{Name: "a-to-b", From: "a", To: "http://b.default.svc.cluster.local:8080/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipA + ":50000", RemoteAddr: ipB + ":8080",
					Report: &pod.Report{Workload: idB, Protocol: "HTTP/1.1", Headers: map[string][]string{
						"X-Forwarded-Client-Cert": {`By=` + spiffeB + `;Hash=abc;Subject="";URI=` + spiffeA},
					}}},
				map[string][]pod.Flow{
					idA: {{Src: ipA + ":50001", Dst: ipB + ":8080", Kind: "tls", SNI: istioSNI8080, ALPN: istioHTTPALPN, TLSVersion: "TLSv1.3"}},
					idB: {{Src: ipA + ":50001", Dst: ipB + ":8080", Kind: "tls", SNI: istioSNI8080, ALPN: istioHTTPALPN, TLSVersion: "TLSv1.3", ServerVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", ResponseCode: "200", DownstreamRemoteAddress: ipA + ":50000", DownstreamLocalAddress: ipB + ":8080",
						UpstreamLocalAddress: ipA + ":50001", UpstreamHost: ipB + ":8080", UpstreamTLSVersion: "TLSv1.3", UpstreamPeerURISAN: spiffeB,
						UpstreamCluster: "outbound|8080||b.default.svc.cluster.local", ResponseCodeDetails: "via_upstream", Method: "GET"}},
					idB: {{Direction: "inbound", ResponseCode: "200", DownstreamRemoteAddress: ipA + ":50001", DownstreamTLSVersion: "TLSv1.3",
						DownstreamPeerURISAN: spiffeA, UpstreamCluster: "inbound|8080||", UpstreamHost: ipB + ":8080", Method: "GET", FilterChainName: "0.0.0.0_8080"}},
				}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.MTLS}, wantPeer: spiffeA,
			wantPath: []string{idA + ">" + idB},
			check: func(t *testing.T, r *Result) {
				h := r.Hops[0]
				if h.Src != ipA+":50001" {
					t.Errorf("hop src = %q, want the sidecar's upstream address", h.Src)
				}
				l := h.Layers[0]
				if !slices.Equal(l.ALPN, istioHTTPALPN) || l.SNI != istioSNI8080 || l.Server != spiffeB || l.TerminatedBy != ByProxy {
					t.Errorf("layer = %+v", l)
				}
				for _, s := range []string{"capture:" + idA, "capture:" + idB, "accesslog:" + idA, "accesslog:" + idB, "app:" + idB} {
					if !slices.Contains(h.Sources, s) {
						t.Errorf("sources %v lack %s", h.Sources, s)
					}
				}
				if r.Reason != "" {
					t.Errorf("reason = %q, want empty for a clean call", r.Reason)
				}
			},
		},
		{
			name: "sidecar mTLS over TCP, access logs only",
			obs: obs(mesh.Check{Name: "a-to-b-tcp", From: "a", To: "tcp://b.default.svc.cluster.local:9000"},
				pod.CallResult{Result: outcome.OK, LocalAddr: ipA + ":50010", RemoteAddr: ipB + ":9000",
					Report: &pod.Report{Workload: idB, Protocol: "tcp", Payload: "hello"}},
				nil,
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", DownstreamRemoteAddress: ipA + ":50010", UpstreamLocalAddress: ipA + ":50011",
						UpstreamHost: ipB + ":9000", UpstreamTLSVersion: "TLSv1.3", UpstreamCluster: "outbound|9000||b.default.svc.cluster.local"}},
					idB: {{Direction: "inbound", DownstreamRemoteAddress: ipA + ":50011", DownstreamTLSVersion: "TLSv1.3",
						DownstreamPeerURISAN: spiffeA, RequestedServerName: istioSNI9000, UpstreamCluster: "inbound|9000||", UpstreamHost: ipB + ":9000"}},
				}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.MTLS}, wantPeer: spiffeA,
		},
		{
			name: "app TLS inside sidecar mTLS",
			obs: obs(mesh.Check{Name: "a-to-c", From: "a", To: "https://c.default.svc.cluster.local:8443/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipA + ":50020", RemoteAddr: ipC + ":8443",
					TLS:    &pod.TLSInfo{Version: "TLSv1.3", SNI: "c.default.svc.cluster.local", ALPN: "http/1.1"},
					Report: &pod.Report{Workload: idC, Protocol: "HTTP/1.1", TLS: &pod.TLSInfo{Version: "TLSv1.3", SNI: "c.default.svc.cluster.local", ALPN: "http/1.1"}}},
				map[string][]pod.Flow{
					idA: {{Src: ipA + ":50021", Dst: ipC + ":8443", Kind: "tls", SNI: istioSNIc, ALPN: istioTCPALPN, TLSVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", DownstreamRemoteAddress: ipA + ":50020", UpstreamLocalAddress: ipA + ":50021",
						UpstreamHost: ipC + ":8443", UpstreamTLSVersion: "TLSv1.3", UpstreamPeerURISAN: spiffeC}},
					idC: {{Direction: "inbound", DownstreamRemoteAddress: ipA + ":50021", DownstreamTLSVersion: "TLSv1.3",
						DownstreamPeerURISAN: spiffeA, UpstreamHost: ipC + ":8443", UpstreamCluster: "inbound|8443||"}},
				}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.Layers(outcome.MTLS, outcome.TLS)}, wantPeer: spiffeA,
			check: func(t *testing.T, r *Result) {
				ls := r.Hops[0].Layers
				if ls[0].SNI != istioSNIc || ls[1].SNI != "c.default.svc.cluster.local" || ls[1].TerminatedBy != ByApp {
					t.Errorf("layers = %+v, want Istio's SNI outside and the app's inside", ls)
				}
			},
		},
		{
			name: "gateway terminates TLS and originates mTLS",
			obs: obs(mesh.Check{Name: "in-to-b", From: "naked", Via: "ingress", To: "https://b.example.com/"},
				pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipN + ":40010", RemoteAddr: ipGW + ":443",
					TLS: &pod.TLSInfo{Version: "TLSv1.3", SNI: "b.example.com", ALPN: "http/1.1", PeerDNS: []string{"b.example.com"}},
					Report: &pod.Report{Workload: idB, Protocol: "HTTP/1.1", Headers: map[string][]string{
						"x-forwarded-client-cert": {`By=` + spiffeB + `;Hash=1;URI=` + spiffeGW},
					}}},
				map[string][]pod.Flow{
					idN:  {{Src: ipN + ":40010", Dst: ipGW + ":443", Kind: "tls", SNI: "b.example.com", ALPN: []string{"http/1.1"}, TLSVersion: "TLSv1.3"}},
					idGW: {{Src: ipGW + ":33000", Dst: ipB + ":8080", Kind: "tls", SNI: istioSNI8080, ALPN: istioHTTPALPN, TLSVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{
					idGW: {{Direction: "gateway", Method: "GET", ResponseCode: "200", DownstreamRemoteAddress: ipN + ":40010", DownstreamTLSVersion: "TLSv1.3",
						RequestedServerName: "b.example.com", UpstreamLocalAddress: ipGW + ":33000", UpstreamHost: ipB + ":8080",
						UpstreamTLSVersion: "TLSv1.3", UpstreamPeerURISAN: spiffeB, UpstreamCluster: "outbound|8080||b.default.svc.cluster.local"}},
					idB: {{Direction: "inbound", Method: "GET", ResponseCode: "200", DownstreamRemoteAddress: ipGW + ":33000", DownstreamTLSVersion: "TLSv1.3",
						DownstreamPeerURISAN: spiffeGW, UpstreamHost: ipB + ":8080", UpstreamCluster: "inbound|8080||"}},
				}),
			wantResult: outcome.OK, wantWire: []outcome.Wire{outcome.TLS, outcome.MTLS}, wantPeer: spiffeGW,
			wantPath: []string{idN + ">" + idGW, idGW + ">" + idB},
		},
		{
			name: "gateway PASSTHROUGH plus DestinationRule origination",
			obs: obs(mesh.Check{Name: "double", From: "naked", Via: "ingress", To: "https://ext.example.com/"},
				pod.CallResult{Result: outcome.TLSError, LocalAddr: ipN + ":40030", RemoteAddr: ipGW + ":443",
					Error: "TLS handshake with 10.0.0.5:443: tls: first record does not look like a TLS handshake"},
				map[string][]pod.Flow{
					idN:  {{Src: ipN + ":40030", Dst: ipGW + ":443", Kind: "tls", SNI: "ext.example.com", ALPN: []string{"http/1.1"}, TLSVersion: "TLSv1.3"}},
					idGW: {{Src: ipGW + ":33100", Dst: ipExt + ":8443", Kind: "tls", SNI: "ext.example.com", TLSVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{
					idGW: {{Direction: "gateway", DownstreamRemoteAddress: ipN + ":40030", RequestedServerName: "ext.example.com",
						FilterChainName: "0.0.0.0_443_ext.example.com", UpstreamLocalAddress: ipGW + ":33100", UpstreamHost: ipExt + ":8443",
						UpstreamTLSVersion: "TLSv1.3", UpstreamCluster: "outbound|8443||ext.example.com"}},
				}),
			wantResult: outcome.TLSError, wantWire: []outcome.Wire{outcome.TLS, outcome.Layers(outcome.TLS, outcome.TLS)}, wantPeer: outcome.PeerNone,
			wantReason: []string{"client tls: not TLS"},
			check: func(t *testing.T, r *Result) {
				inner := r.Hops[1].Layers[1]
				if inner.SNI != "ext.example.com" || !slices.Equal(inner.ALPN, []string{"http/1.1"}) {
					t.Errorf("inner layer = %+v, want the client's ClientHello", inner)
				}
			},
		},
		{
			name: "sidecar origination fails certificate verification",
			obs: obs(mesh.Check{Name: "a-to-ext", From: "a", To: "http://ext.default.svc.cluster.local:8443/"},
				pod.CallResult{Result: outcome.HTTP(503), Status: 503, LocalAddr: ipA + ":50030", RemoteAddr: ipExt + ":8443",
					Body: "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: TLS_error:...CERTIFICATE_VERIFY_FAILED"},
				map[string][]pod.Flow{
					idA:   {{Src: ipA + ":50031", Dst: ipExt + ":8443", Kind: "tls", SNI: "ext.default.svc.cluster.local", TLSVersion: "TLSv1.3"}},
					idExt: {{Src: ipA + ":50031", Dst: ipExt + ":8443", Kind: "tls", SNI: "ext.default.svc.cluster.local", TLSVersion: "TLSv1.3", ServerVersion: "TLSv1.3"}},
				},
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", Method: "GET", ResponseCode: "503", ResponseFlags: "UF", DownstreamRemoteAddress: ipA + ":50030",
						UpstreamHost: ipExt + ":8443", UpstreamTransportFailureReason: verifyFailed,
						ResponseCodeDetails: "upstream_reset_before_response_started{remote_connection_failure|TLS_error:_CERTIFICATE_VERIFY_FAILED}"}},
				}),
			wantResult: outcome.HTTP(503), wantWire: []outcome.Wire{outcome.TLS}, wantPeer: outcome.PeerNone,
			wantReason: []string{"UF", "CERTIFICATE_VERIFY_FAILED"},
			check: func(t *testing.T, r *Result) {
				if h := r.Hops[0]; h.Src != ipA+":50031" || h.Flags != "UF" {
					t.Errorf("hop = %+v, want src found in the capture and flag UF", h)
				}
			},
		},
		{
			name: "no filter chain for a ClientHello without SNI",
			obs: obs(mesh.Check{Name: "no-sni", From: "naked", Via: "ingress", To: "https://b.example.com/", TLS: &mesh.CheckTLS{SNI: ptr("")}},
				pod.CallResult{Result: outcome.TLSError, LocalAddr: ipN + ":40020", RemoteAddr: ipGW + ":443",
					Error: "TLS handshake with 10.0.0.5:443: EOF"},
				map[string][]pod.Flow{
					idN: {{Src: ipN + ":40020", Dst: ipGW + ":443", Kind: "tls", TLSVersion: "TLSv1.3", ALPN: []string{"http/1.1"}}},
				},
				map[string][]accesslog.Entry{
					idGW: {{Direction: "gateway", ResponseFlags: "NR", ResponseCode: "0", DownstreamRemoteAddress: ipN + ":40020",
						DownstreamLocalAddress: ipGW + ":443"}},
				}),
			wantResult: outcome.TLSError, wantWire: []outcome.Wire{outcome.TLS}, wantPeer: outcome.PeerNone,
			wantReason: []string{"NR", "filter_chain_not_found", "client tls: closed during handshake"},
			wantPath:   []string{idN + ">" + idGW},
		},
		{
			name: "reset before any upstream connection",
			obs: obs(mesh.Check{Name: "a-to-b-reset", From: "a", To: "tcp://b.default.svc.cluster.local:9000"},
				pod.CallResult{Result: outcome.Reset, LocalAddr: ipA + ":50040", RemoteAddr: ipB + ":9000", Error: "read answer: EOF"},
				nil,
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", ResponseFlags: "UF", DownstreamRemoteAddress: ipA + ":50040", UpstreamHost: ipB + ":9000",
						ConnectionTerminationDetails: "connect timeout", UpstreamCluster: "outbound|9000||b.default.svc.cluster.local"}},
				}),
			wantResult: outcome.Reset, wantWire: []outcome.Wire{outcome.None}, wantPeer: outcome.PeerNone,
			wantReason: []string{"UF", "connect timeout"},
			wantPath:   []string{idA + ">" + idB},
		},
		{
			name: "no route at the client sidecar ignores an older flow to the same address",
			obs: obs(mesh.Check{Name: "a-to-b-nr", From: "a", To: "http://b.default.svc.cluster.local:8080/"},
				pod.CallResult{Result: outcome.HTTP(404), Status: 404, LocalAddr: ipA + ":50050", RemoteAddr: ipB + ":8080"},
				map[string][]pod.Flow{idA: {{Src: ipA + ":49999", Dst: ipB + ":8080", Kind: "tls"}}},
				map[string][]accesslog.Entry{idA: {{Direction: "outbound", Method: "GET", ResponseCode: "404", ResponseFlags: "NR",
					DownstreamRemoteAddress: ipA + ":50050", ResponseCodeDetails: "route_not_found", FilterChainName: "0.0.0.0_8080"}}}),
			wantResult: outcome.HTTP(404), wantWire: []outcome.Wire{outcome.None}, wantPeer: outcome.PeerNone,
			wantReason: []string{"NR", "route_not_found"},
		},
		{
			name: "failed handshake seen only in the receiver's capture",
			obs: obs(mesh.Check{Name: "a-to-b-strict", From: "a", To: "http://b.default.svc.cluster.local:8080/"},
				pod.CallResult{Result: outcome.HTTP(503), Status: 503, LocalAddr: ipA + ":50060", RemoteAddr: ipB + ":8080"},
				map[string][]pod.Flow{
					idB: {
						{Src: ipN + ":1234", Dst: ipB + ":8080", Kind: "tls"}, // someone else's connection
						{Src: ipA + ":50061", Dst: ipB + ":8080", Kind: "plaintext", Preview: "GET / HTTP/1.1"},
					},
				},
				map[string][]accesslog.Entry{
					idA: {{Direction: "outbound", Method: "GET", ResponseCode: "503", ResponseFlags: "UF", DownstreamRemoteAddress: ipA + ":50060",
						UpstreamHost: ipB + ":8080", ResponseCodeDetails: "upstream_reset_before_response_started{connection_termination}"}},
					idB: {{Direction: "inbound", ResponseFlags: "NR", DownstreamRemoteAddress: ipA + ":50061"}},
				}),
			wantResult: outcome.HTTP(503), wantWire: []outcome.Wire{outcome.Plaintext}, wantPeer: outcome.PeerNone,
			wantReason: []string{"UF", "NR", "filter_chain_not_found"},
			check: func(t *testing.T, r *Result) {
				if h := r.Hops[0]; h.Src != ipA+":50061" || !slices.Contains(h.Sources, "accesslog:"+idB) {
					t.Errorf("hop = %+v, want the source from b's capture and b's log matched by it", h)
				}
			},
		},
		{
			name: "connection refused with no sidecar",
			obs: obs(mesh.Check{Name: "refused", From: "naked", To: "tcp://ext.default.svc.cluster.local:9999"},
				pod.CallResult{Result: outcome.Refused, RemoteAddr: "ext.default.svc.cluster.local:9999", Error: "connect: connection refused"},
				nil, nil),
			wantResult: outcome.Refused, wantWire: []outcome.Wire{outcome.None}, wantPeer: outcome.PeerNone,
			wantPath: []string{idN + ">ext.default.svc.cluster.local:9999"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(tt.obs)
			if r.Result != tt.wantResult {
				t.Errorf("result = %q, want %q", r.Result, tt.wantResult)
			}
			if !slices.Equal(r.Wire, tt.wantWire) {
				t.Errorf("wire = %v, want %v", r.Wire, tt.wantWire)
			}
			if r.Peer != tt.wantPeer {
				t.Errorf("peer = %q, want %q", r.Peer, tt.wantPeer)
			}
			for _, s := range tt.wantReason {
				if !strings.Contains(r.Reason, s) {
					t.Errorf("reason %q lacks %q", r.Reason, s)
				}
			}
			if tt.wantPath != nil {
				var path []string
				for _, h := range r.Hops {
					path = append(path, h.From+">"+h.To)
				}
				if !slices.Equal(path, tt.wantPath) {
					t.Errorf("path = %v, want %v", path, tt.wantPath)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if t.Failed() || testing.Verbose() {
				t.Log("\n" + r.Explain())
			}
		})
	}
}

func TestXFCCDisagreesWithAccessLog(t *testing.T) {
	o := obs(mesh.Check{Name: "x", From: "a", To: "http://b.default.svc.cluster.local:8080/"},
		pod.CallResult{Result: outcome.OK, Status: 200, LocalAddr: ipA + ":1", RemoteAddr: ipB + ":8080",
			Report: &pod.Report{Workload: idB, Headers: map[string][]string{"X-Forwarded-Client-Cert": {"URI=spiffe://evil"}}}},
		nil,
		map[string][]accesslog.Entry{
			idA: {{Direction: "outbound", DownstreamRemoteAddress: ipA + ":1", UpstreamLocalAddress: ipA + ":2", UpstreamHost: ipB + ":8080", UpstreamTLSVersion: "TLSv1.3"}},
			idB: {{Direction: "inbound", DownstreamRemoteAddress: ipA + ":2", DownstreamTLSVersion: "TLSv1.3", DownstreamPeerURISAN: spiffeA, UpstreamHost: ipB + ":8080", Method: "GET"}},
		})
	r := Build(o)
	if r.Peer != spiffeA {
		t.Errorf("peer = %q, want the access log's %q", r.Peer, spiffeA)
	}
	if len(r.Hops[0].Notes) != 1 || !strings.Contains(r.Hops[0].Notes[0], "spiffe://evil") {
		t.Errorf("notes = %v, want the XFCC disagreement", r.Hops[0].Notes)
	}
}

func TestPodsFromMesh(t *testing.T) {
	m := &mesh.Mesh{Workloads: []*mesh.Workload{
		{Name: "a", Namespace: "default", Sidecar: true},
		{Name: "gw", Namespace: "istio-system", Gateway: true},
		{Name: "plain", Namespace: "default"},
	}}
	plan := m.AddressPlan(netip.MustParsePrefix("10.9.0.0/24"))
	got := PodsFromMesh(m, plan)
	want := map[string]PodInfo{
		"10.9.0.2": {ID: "default/a", Sidecar: true},
		"10.9.0.3": {ID: "istio-system/gw", Gateway: true},
		"10.9.0.4": {ID: "default/plain"},
	}
	for ip, p := range want {
		if got[netip.MustParseAddr(ip)] != p {
			t.Errorf("%s = %+v, want %+v", ip, got[netip.MustParseAddr(ip)], p)
		}
	}
}

// tls_inspector's failed parse of a plaintext first flight is not a reason.
func TestReceiverReasonsIgnoreInspectorNoise(t *testing.T) {
	e := &accesslog.Entry{FilterChainName: "inbound|9000|plaintext", UpstreamCluster: "inbound|9000||",
		DownstreamTransportFailureReason: "TLS_error|error:100000f7:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end"}
	if got := receiverReasons(e); len(got) != 0 {
		t.Errorf("reasons = %q, want none", got)
	}
	e.FilterChainName = "inbound|9000|mtls"
	e.DownstreamTransportFailureReason = "TLS_error|CERTIFICATE_VERIFY_FAILED"
	if got := receiverReasons(e); len(got) != 1 {
		t.Errorf("a real handshake failure must stay a reason: %q", got)
	}
}

// A check via a gateway whose Service sends the URL's port to another
// targetPort: the first hop goes to the port dialled, even when the call
// left no address (refused), and carries the harness's note why.
func TestBuildViaGatewayTargetPort(t *testing.T) {
	const note = "via istio-system/ingress: port 80 of its Service istio-system/ingress targets 8080, where the gateway listens"
	o := obs(mesh.Check{Name: "via", From: "naked", Via: "ingress", To: "http://b.example.com/"},
		pod.CallResult{Result: outcome.Refused, Error: "connect: connection refused"}, nil, nil)
	o.Dial, o.DialNote = ipGW+":8080", note
	r := Build(o)
	if len(r.Hops) != 1 {
		t.Fatalf("hops = %+v, want one", r.Hops)
	}
	h := r.Hops[0]
	if h.To != idGW || h.Dst != ipGW+":8080" || !slices.Contains(h.Notes, note) {
		t.Errorf("hop = %+v, want to %s at %s:8080 with the note", h, idGW, ipGW)
	}
}
