package pod

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/outcome"
)

// startAgent runs an agent on loopback with an HTTP port and a TLS port and
// returns their "localhost:port" addresses.
func startAgent(t *testing.T, paths Paths) (plain, secure string) {
	t.Helper()
	a := NewAgent(Config{Name: "b", Namespace: "default", Ports: []Port{
		{Name: "http", Port: 0},
		{Name: "https", Port: 0, TLS: true},
	}}, AgentOptions{Paths: paths, ListenHost: "127.0.0.1", Logf: t.Logf})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	addrs := a.Addrs()
	port := func(i int) int { return addrs[i].(*net.TCPAddr).Port }
	return fmt.Sprintf("localhost:%d", port(0)), fmt.Sprintf("localhost:%d", port(1))
}

func ptr[T any](v T) *T { return &v }

func TestEchoAndCall(t *testing.T) {
	paths := testPaths(t)
	plain, secure := startAgent(t, paths)
	tests := []struct {
		name  string
		req   CallRequest
		check func(t *testing.T, r CallResult)
	}{
		{"http/1.1", CallRequest{URL: "http://" + plain + "/hello?x=1"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			rep := r.Report
			if rep.Protocol != "HTTP/1.1" || rep.Method != "GET" || rep.Host != plain || rep.Path != "/hello?x=1" || rep.Workload != "default/b" || rep.TLS != nil {
				t.Errorf("report = %+v", rep)
			}
			if rep.RemoteAddr != r.LocalAddr {
				t.Errorf("server saw %s, client was %s", rep.RemoteAddr, r.LocalAddr)
			}
			if got := rep.Headers["User-Agent"]; len(got) != 1 || got[0] != "meshtls-pod" {
				t.Errorf("headers = %v", rep.Headers)
			}
		}},
		{"status", CallRequest{URL: "http://" + plain + "/status/503"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.HTTP(503))
			if r.Status != 503 || r.Report.Path != "/status/503" {
				t.Errorf("status %d, report %+v", r.Status, r.Report)
			}
		}},
		{"dial keeps host", CallRequest{URL: "http://b.example.com:80/", Dial: plain}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.Report.Host != "b.example.com" {
				t.Errorf("host = %q", r.Report.Host)
			}
		}},
		{"raw tcp", CallRequest{URL: "tcp://" + plain, Payload: "ping"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.Report.Protocol != "tcp" || r.Report.Payload != "ping" {
				t.Errorf("report = %+v", r.Report)
			}
		}},
		{"raw tcp default payload", CallRequest{URL: "tcp://" + plain}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.Report.Payload != "hello" {
				t.Errorf("payload = %q", r.Report.Payload)
			}
		}},
		{"app tls", CallRequest{URL: "https://" + secure + "/x", CAs: []string{"app"}}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.TLS == nil || r.TLS.Version != "TLSv1.3" || r.TLS.SNI != "localhost" || r.TLS.ALPN != "http/1.1" || r.TLS.PeerSubject != "CN=app" {
				t.Errorf("client TLS = %+v", r.TLS)
			}
			st := r.Report.TLS
			if st == nil || st.SNI != "localhost" || st.PeerSubject != "" || r.Report.Protocol != "HTTP/1.1" {
				t.Errorf("server TLS = %+v, report %+v", st, r.Report)
			}
		}},
		{"app tls with client cert", CallRequest{URL: "https://" + secure + "/", ClientCert: "client"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			st := r.Report.TLS
			if st == nil || st.PeerSubject != "CN=client-a" || len(st.PeerURIs) != 1 || st.PeerURIs[0] != "spiffe://cluster.local/ns/default/sa/a" || st.PeerSerial == "" || st.PeerIssuer != "CN=client CA" {
				t.Errorf("server TLS = %+v", st)
			}
		}},
		{"app tls rejects untrusted client cert", CallRequest{URL: "https://" + secure + "/", ClientCert: "untrusted"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.TLSError)
		}},
		{"no SNI still verified", CallRequest{URL: "https://" + secure + "/", SNI: ptr("")}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.TLS.SNI != "" || r.Report.TLS.SNI != "" {
				t.Errorf("SNI sent: client %+v server %+v", r.TLS, r.Report.TLS)
			}
		}},
		{"explicit SNI", CallRequest{URL: "https://" + secure + "/", SNI: ptr("b.example.com")}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.Report.TLS.SNI != "b.example.com" {
				t.Errorf("server saw SNI %q", r.Report.TLS.SNI)
			}
		}},
		{"no SNI, wrong CA", CallRequest{URL: "https://" + secure + "/", SNI: ptr(""), CAs: []string{"ingress"}}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.TLSError)
			if !strings.Contains(r.Error, "certificate") {
				t.Errorf("error = %q", r.Error)
			}
		}},
		{"host not in certificate", CallRequest{URL: "https://other.example.com/", Dial: secure}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.TLSError)
		}},
		{"tls raw", CallRequest{URL: "tls://" + secure, Payload: "over tls"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.OK)
			if r.Report.Protocol != "tcp" || r.Report.Payload != "over tls" || r.Report.TLS == nil {
				t.Errorf("report = %+v", r.Report)
			}
		}},
		{"tls to plaintext port", CallRequest{URL: "https://" + plain + "/"}, func(t *testing.T, r CallResult) {
			want(t, r, outcome.TLSError)
		}},
		{"plaintext to tls port", CallRequest{URL: "http://" + secure + "/"}, func(t *testing.T, r CallResult) {
			// The app refuses cleartext like Go's HTTPS server.
			if r.Result != outcome.HTTP(400) {
				t.Errorf("plaintext HTTP to a TLS port: %+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Call(context.Background(), tc.req, paths)
			if r.LocalAddr == "" || r.RemoteAddr == "" {
				t.Errorf("addresses not recorded: %+v", r)
			}
			tc.check(t, r)
		})
	}
}

func want(t *testing.T, r CallResult, result outcome.Result) {
	t.Helper()
	if r.Result != result {
		t.Fatalf("result = %q, want %q (error %q, body %q)", r.Result, result, r.Error, r.Body)
	}
	if _, isHTTP := result.HTTPStatus(); result == outcome.OK || isHTTP {
		if r.Report == nil {
			t.Fatalf("no report in %+v", r)
		}
	}
}

// The echo app speaks h2c (prior knowledge) and h2 over its own TLS.
func TestEchoHTTP2(t *testing.T) {
	paths := testPaths(t)
	plain, secure := startAgent(t, paths)
	pool, err := paths.CAPool([]string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		tr        *http.Transport
		tls       bool
	}{
		{"h2c", "http://" + plain + "/h2c", func() *http.Transport {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			return &http.Transport{Protocols: &p}
		}(), false},
		{"h2 over app tls", "https://" + secure + "/h2", func() *http.Transport {
			var p http.Protocols
			p.SetHTTP2(true)
			return &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{RootCAs: pool}}
		}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tc.tr, Timeout: 5 * time.Second}).Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var rep Report
			if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
				t.Fatal(err)
			}
			if rep.Protocol != "HTTP/2.0" || (rep.TLS != nil) != tc.tls {
				t.Errorf("report = %+v", rep)
			}
			if tc.tls && rep.TLS.ALPN != "h2" {
				t.Errorf("ALPN = %q", rep.TLS.ALPN)
			}
		})
	}
}

func TestCallFailures(t *testing.T) {
	paths := testPaths(t)

	// refused: a port that was just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// reset: a listener that closes every connection without answering.
	rst := listen(t, func(c net.Conn) { c.Close() })
	// rst2: reads the request, then aborts with RST.
	abort := listen(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 100))
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	// timeout: accepts, reads, never answers.
	silent := listen(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })

	for _, tc := range []struct {
		name string
		req  CallRequest
		want outcome.Result
	}{
		{"refused", CallRequest{URL: "http://" + closed + "/"}, outcome.Refused},
		{"closed http", CallRequest{URL: "http://" + rst + "/"}, outcome.Reset},
		{"closed tcp", CallRequest{URL: "tcp://" + rst}, outcome.Reset},
		{"rst http", CallRequest{URL: "http://" + abort + "/"}, outcome.Reset},
		{"closed during tls", CallRequest{URL: "https://" + rst + "/"}, outcome.TLSError},
		{"timeout http", CallRequest{URL: "http://" + silent + "/", TimeoutMS: 300}, outcome.Timeout},
		{"timeout tcp", CallRequest{URL: "tcp://" + silent, TimeoutMS: 300}, outcome.Timeout},
		{"timeout tls", CallRequest{URL: "tls://" + silent, TimeoutMS: 300}, outcome.Timeout},
		{"bad scheme", CallRequest{URL: "ftp://x/"}, outcome.Error},
		{"missing CA file", CallRequest{URL: "https://" + silent + "/", CAs: []string{"nope"}}, outcome.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := Call(context.Background(), tc.req, paths)
			if r.Result != tc.want {
				t.Fatalf("result = %q (%s), want %q", r.Result, r.Error, tc.want)
			}
			if r.Error == "" {
				t.Errorf("no error message")
			}
			if tc.want != outcome.Error && r.RemoteAddr == "" {
				t.Errorf("remote address not recorded")
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

// listen serves every connection with handle until the test ends.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}
