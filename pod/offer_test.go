package pod

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"

	"github.com/meshtls/meshtls/outcome"
)

// The client's TLS offer (version range, ALPN, cipher suites) reaches the
// app, and h2 negotiated by ALPN is spoken.
func TestCallTLSOffer(t *testing.T) {
	paths := testPaths(t)
	_, secure := startAgent(t, paths)
	tests := []struct {
		name         string
		req          CallRequest
		result       outcome.Result
		version      string
		alpn, proto  string
		wantErrMatch string
	}{
		{"max TLS 1.2", CallRequest{MaxVersion: tls.VersionTLS12}, outcome.OK, "TLSv1.2", "http/1.1", "HTTP/1.1", ""},
		{"min TLS 1.3", CallRequest{MinVersion: tls.VersionTLS13}, outcome.OK, "TLSv1.3", "http/1.1", "HTTP/1.1", ""},
		{"alpn h2", CallRequest{ALPN: []string{"h2"}}, outcome.OK, "TLSv1.3", "h2", "HTTP/2.0", ""},
		{"alpn none", CallRequest{ALPN: []string{}}, outcome.OK, "TLSv1.3", "", "HTTP/1.1", ""},
		{"cipher offered", CallRequest{MaxVersion: tls.VersionTLS12, Ciphers: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}}, outcome.OK, "TLSv1.2", "http/1.1", "HTTP/1.1", ""},
		{"no common cipher", CallRequest{MaxVersion: tls.VersionTLS12, Ciphers: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}, outcome.TLSError, "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.URL = "https://" + secure + "/"
			r := Call(context.Background(), req, paths)
			if r.Result != tc.result {
				t.Fatalf("result %q, want %q: %+v", r.Result, tc.result, r)
			}
			if tc.result != outcome.OK {
				return
			}
			if r.TLS.Version != tc.version || r.TLS.ALPN != tc.alpn || r.Report.Protocol != tc.proto {
				t.Errorf("client TLS %+v, app saw %s; want %s %q %s", r.TLS, r.Report.Protocol, tc.version, tc.alpn, tc.proto)
			}
			if r.Report.TLS.Version != tc.version {
				t.Errorf("app negotiated %s", r.Report.TLS.Version)
			}
		})
	}
}

// A server-first app greets before reading; a server-first client reads
// without writing. A client that waits on an app that waits times out.
func TestServerFirst(t *testing.T) {
	paths := testPaths(t)
	a := NewAgent(Config{Name: "db", Namespace: "default", Ports: []Port{
		{Name: "tcp-mysql", Port: 0, ServerFirst: true},
		{Name: "tcp", Port: 0},
		{Name: "tls", Port: 0, TLS: true, ServerFirst: true},
	}}, AgentOptions{Paths: paths, ListenHost: "127.0.0.1", Logf: t.Logf})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	addr := func(i int) string { return fmt.Sprintf("localhost:%d", a.Addrs()[i].(*net.TCPAddr).Port) }

	r := Call(context.Background(), CallRequest{URL: "tcp://" + addr(0), ServerFirst: true}, paths)
	want(t, r, outcome.OK)
	if r.Report.Payload != "" || r.Report.Workload != "default/db" {
		t.Errorf("greeting %+v", r.Report)
	}
	r = Call(context.Background(), CallRequest{URL: "tls://" + addr(2), ServerFirst: true}, paths)
	want(t, r, outcome.OK)
	if r.Report.TLS == nil {
		t.Errorf("greeting over TLS has no TLS: %+v", r.Report)
	}
	// A client-first app and a server-first client wait on each other.
	r = Call(context.Background(), CallRequest{URL: "tcp://" + addr(1), ServerFirst: true, TimeoutMS: 300}, paths)
	if r.Result != "timeout" {
		t.Errorf("both waiting: %+v", r)
	}
}
