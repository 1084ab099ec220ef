package pod

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// recConn records what one side wrote.
type recConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

// handshake runs a real crypto/tls handshake over net.Pipe and returns the
// bytes each side wrote: the client's starts with its ClientHello, the
// server's with its ServerHello.
func handshake(t *testing.T, client *tls.Config) (cli, srv []byte) {
	t.Helper()
	cert, err := testPaths(t).LoadKeyPair("app")
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	rc, rs := &recConn{Conn: a}, &recConn{Conn: b}
	tc := tls.Client(rc, client)
	ts := tls.Server(rs, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: client.NextProtos, MaxVersion: client.MaxVersion})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = ts.Handshake(); b.Close() }()
	_ = tc.Handshake()
	a.Close()
	wg.Wait()
	return rc.bytes(), rs.bytes()
}

func TestParseClientHello(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conf     *tls.Config
		sni      string
		alpn     []string
		max, srv string
	}{
		{"tls1.3 sni alpn", &tls.Config{ServerName: "b.default.svc.cluster.local", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true},
			"b.default.svc.cluster.local", []string{"h2", "http/1.1"}, "TLSv1.3", "TLSv1.3"},
		{"istio alpn", &tls.Config{ServerName: "outbound_.8080_._.b.default.svc.cluster.local", NextProtos: []string{"istio-peer-exchange", "istio"}, InsecureSkipVerify: true},
			"outbound_.8080_._.b.default.svc.cluster.local", []string{"istio-peer-exchange", "istio"}, "TLSv1.3", "TLSv1.3"},
		{"tls1.2 only", &tls.Config{ServerName: "x.example.com", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true},
			"x.example.com", nil, "TLSv1.2", "TLSv1.2"},
		{"no sni", &tls.Config{InsecureSkipVerify: true}, "", nil, "TLSv1.3", "TLSv1.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := handshake(t, tc.conf)
			ch, err := ParseClientHello(cli)
			if err != nil {
				t.Fatal(err)
			}
			if ch.SNI != tc.sni || !slices.Equal(ch.ALPN, tc.alpn) || tlsVersionName(ch.MaxVersion()) != tc.max {
				t.Errorf("got SNI %q ALPN %q max %s", ch.SNI, ch.ALPN, tlsVersionName(ch.MaxVersion()))
			}
			v, err := ParseServerHello(srv)
			if err != nil || tlsVersionName(v) != tc.srv {
				t.Errorf("ServerHello version %s, %v", tlsVersionName(v), err)
			}
			// Every prefix is "incomplete", never a panic or a wrong answer.
			hello := cli[:5+(int(cli[3])<<8|int(cli[4]))]
			for n := range len(hello) {
				if _, err := ParseClientHello(hello[:n]); n > 0 && !IsIncomplete(err) {
					t.Fatalf("prefix %d/%d: %v", n, len(hello), err)
				}
			}
			// The same hello split into records of 100 bytes parses the same.
			split := resplit(t, cli, 100)
			if ch2, err := ParseClientHello(split); err != nil || ch2.SNI != ch.SNI || !slices.Equal(ch2.ALPN, ch.ALPN) {
				t.Errorf("fragmented: %+v %v", ch2, err)
			}
		})
	}
}

// resplit re-frames the first handshake message of b into records of n bytes.
func resplit(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	_, body, err := handshakeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	msg := b[5 : 5+4+len(body)]
	var out []byte
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, 0x16, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

func TestParseClientHelloRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"http":         []byte("GET / HTTP/1.1\r\n\r\n"),
		"alert record": {0x15, 3, 3, 0, 2, 2, 40},
		"zero length":  {0x16, 3, 1, 0, 0},
		"server hello": {0x16, 3, 3, 0, 4, 2, 0, 0, 0},
		// server_name whose host_name claims 9 bytes in a 5-byte extension
		"bad ext": append([]byte{0x16, 3, 1, 0, 53, 1, 0, 0, 49, 3, 3}, append(make([]byte, 32),
			0, 0, 0, 0, 0, 9, 0, 0, 0, 5, 0, 3, 0, 0, 9)...),
	} {
		if _, err := ParseClientHello(b); err == nil || IsIncomplete(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseClientHello(f *testing.F) {
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseClientHello(b)
		if err == nil && ch == nil {
			t.Fatal("nil hello without error")
		}
		_, _ = ParseServerHello(b)
	})
}

// Synthetic segments: SYN, SYN-ACK, a ClientHello in two segments, the
// ServerHello; a retransmitted segment and a plaintext connection.
func TestTracker(t *testing.T) {
	cli, srv := handshake(t, &tls.Config{ServerName: "b.example.com", NextProtos: []string{"h2"}, InsecureSkipVerify: true})
	hello := cli[:5+(int(cli[3])<<8|int(cli[4]))] // the ClientHello record

	c := netip.MustParseAddrPort("10.0.0.1:40000")
	s := netip.MustParseAddrPort("10.0.0.2:443")
	now := time.Now()
	tr := NewTracker()
	tr.Add(Segment{Time: now, Src: c, Dst: s, SYN: true, Seq: 100})
	tr.Add(Segment{Src: s, Dst: c, SYN: true, ACK: true, Seq: 5000})
	half := len(hello) / 2
	tr.Add(Segment{Src: c, Dst: s, ACK: true, Seq: 101, Payload: hello[:half]})
	if got := tr.Flows(0); len(got) != 0 {
		t.Fatalf("flow emitted from half a ClientHello: %+v", got)
	}
	tr.Add(Segment{Src: c, Dst: s, ACK: true, Seq: 101, Payload: hello[:half]}) // retransmission
	tr.Add(Segment{Src: c, Dst: s, ACK: true, Seq: 101 + uint32(half), Payload: hello[half:]})
	tr.Add(Segment{Src: s, Dst: c, ACK: true, Seq: 5001, Payload: srv})

	p := netip.MustParseAddrPort("10.0.0.1:40001")
	d := netip.MustParseAddrPort("10.0.0.3:8080")
	tr.Add(Segment{Src: p, Dst: d, SYN: true, Seq: 7})
	tr.Add(Segment{Src: d, Dst: p, SYN: true, ACK: true, Seq: 9})
	tr.Add(Segment{Src: p, Dst: d, ACK: true, Seq: 8, Payload: []byte("GET /x HTTP/1.1\r\nHost: b\r\n\r\n")})
	tr.Add(Segment{Src: d, Dst: p, ACK: true, Seq: 10, Payload: []byte("HTTP/1.1 200 OK\r\n")})
	// A connection whose SYN was not seen is ignored.
	tr.Add(Segment{Src: p, Dst: s, ACK: true, Seq: 1, Payload: []byte("late")})

	got := tr.Flows(0)
	if len(got) != 2 {
		t.Fatalf("flows = %+v", got)
	}
	f := got[0]
	if f.Seq != 1 || f.Kind != "tls" || f.SNI != "b.example.com" || !slices.Equal(f.ALPN, []string{"h2"}) ||
		f.TLSVersion != "TLSv1.3" || f.ServerVersion != "TLSv1.3" || f.Src != c.String() || f.Dst != s.String() || f.TimeUnixMS != now.UnixMilli() {
		t.Errorf("tls flow = %+v", f)
	}
	f = got[1]
	if f.Seq != 2 || f.Kind != "plaintext" || f.Preview != "GET /x HTTP/1.1..Host: b...." || f.ServerVersion != "" {
		t.Errorf("plaintext flow = %+v", f)
	}
	if rest := tr.Flows(1); len(rest) != 1 || rest[0].Seq != 2 {
		t.Errorf("since=1: %+v", rest)
	}
}
