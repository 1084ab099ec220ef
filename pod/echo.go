package pod

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Protocol timeouts of the echo server. They bound how long a connection may
// stay silent; they never delay an answer to a peer that has spoken.
const (
	firstByteTimeout = 30 * time.Second // peer connected but sent nothing yet
	lineTimeout      = time.Second      // peer started a line but went silent
	handshakeTimeout = 10 * time.Second
	maxLine          = 4096
)

// Echo is the app on one port: it sniffs each connection (TLS ClientHello,
// HTTP/1.x, h2c prior knowledge, anything else = raw TCP) and answers with a
// Report of what it saw.
type Echo struct {
	workload string
	port     Port
	tlsConf  *tls.Config // nil unless port.TLS
	logf     func(string, ...any)

	srv   *http.Server
	conns *chanListener

	mu     sync.Mutex
	ln     net.Listener
	closed bool
}

// NewEcho prepares the echo app for one port of workload "ns/name". When
// p.TLS is set it loads CertDir/app.crt+app.key and trusts the client and
// mesh CAs for client certificates that are offered (none is required).
func NewEcho(workload string, p Port, paths Paths) (*Echo, error) {
	e := &Echo{workload: workload, port: p, logf: log.Printf}
	if p.TLS {
		cert, err := paths.LoadKeyPair("app")
		if err != nil {
			return nil, fmt.Errorf("port %d (%s) terminates TLS: %w", p.Port, p.Name, err)
		}
		pool, err := paths.CAPool([]string{"client", "mesh"})
		if err != nil {
			return nil, fmt.Errorf("port %d (%s) verifies client certificates: %w", p.Port, p.Name, err)
		}
		e.tlsConf = &tls.Config{
			Certificates: []tls.Certificate{cert},
			// Ask for a client certificate; a bad one fails the handshake
			// (as an app with optional client auth would), none is fine.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  pool,
			NextProtos: []string{"h2", "http/1.1"},
		}
	}
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.serveHTTP),
		ReadHeaderTimeout: firstByteTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	// HTTP/1.1 and h2c with prior knowledge on the same plain connection:
	// that is what sidecars and clients send to an app port.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	e.srv.Protocols = &protos
	return e, nil
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (e *Echo) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.ln = ln
	e.conns = newChanListener(ln.Addr())
	e.mu.Unlock()
	go func() { _ = e.srv.Serve(e.conns) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("echo port %d: accept: %w", e.port.Port, err)
		}
		go e.handle(c)
	}
}

// Close stops accepting and closes open HTTP connections.
func (e *Echo) Close() error {
	e.mu.Lock()
	e.closed = true
	ln := e.ln
	e.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	return e.srv.Close()
}

type connKind int

const (
	kindRaw connKind = iota
	kindTLS
	kindHTTP
)

// HTTP/1.x request line, or the h2c preface's first line "PRI * HTTP/2.0".
var requestLine = regexp.MustCompile(`^[A-Z]+ \S+ HTTP/(1\.[01]|2\.0)\r?$`)

// sniff waits for the peer's first bytes and classifies them. It reads
// nothing from br: what was peeked is still there for whoever serves it.
func sniff(c net.Conn, br *bufio.Reader) (connKind, error) {
	defer c.SetReadDeadline(time.Time{})
	_ = c.SetReadDeadline(time.Now().Add(firstByteTimeout))
	if _, err := br.Peek(1); err != nil {
		return kindRaw, err
	}
	_ = c.SetReadDeadline(time.Now().Add(lineTimeout))
	if b, err := br.Peek(2); err == nil && b[0] == 0x16 && b[1] == 0x03 {
		return kindTLS, nil
	}
	// Wait for the end of the first line, bounded by size and silence.
	for {
		buf, _ := br.Peek(br.Buffered())
		if bytes.IndexByte(buf, '\n') >= 0 || len(buf) >= maxLine {
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(lineTimeout))
		if _, err := br.Peek(len(buf) + 1); err != nil {
			break // EOF or silence: judge what we have
		}
	}
	buf, _ := br.Peek(br.Buffered())
	line := buf
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		line = buf[:i]
	}
	if requestLine.Match(line) {
		return kindHTTP, nil
	}
	return kindRaw, nil
}

// bufConn is a connection whose first bytes were peeked into r.
type bufConn struct {
	net.Conn
	r   *bufio.Reader
	tls *TLSInfo // TLS the echo server terminated, if any
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (e *Echo) handle(c net.Conn) {
	br := bufio.NewReaderSize(c, maxLine)
	if e.port.ServerFirst && e.tlsConf == nil {
		e.greet(&bufConn{Conn: c, r: br})
		return
	}
	kind, err := sniff(c, br)
	if err != nil {
		_ = c.Close()
		return
	}
	var info *TLSInfo
	var conn net.Conn = &bufConn{Conn: c, r: br}
	if kind != kindTLS && e.tlsConf != nil {
		// A TLS-only app refuses cleartext, as Go's HTTPS server does.
		if kind == kindHTTP {
			_, _ = io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		_ = c.Close()
		return
	}
	if kind == kindTLS && e.tlsConf != nil {
		tc := tls.Server(conn, e.tlsConf)
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			e.logf("echo port %d: TLS handshake from %s: %v", e.port.Port, c.RemoteAddr(), err)
			_ = c.Close()
			return
		}
		st := tc.ConnectionState()
		info = tlsInfo(st, st.ServerName)
		br = bufio.NewReaderSize(tc, maxLine)
		if e.port.ServerFirst {
			e.greet(&bufConn{Conn: tc, r: br, tls: info})
			return
		}
		if kind, err = sniff(tc, br); err != nil {
			_ = tc.Close()
			return
		}
		if kind == kindTLS {
			kind = kindRaw // TLS inside TLS: nothing more we could terminate
		}
		conn = &bufConn{Conn: tc, r: br}
	}
	conn.(*bufConn).tls = info
	switch kind {
	case kindHTTP:
		if !e.conns.deliver(conn) {
			_ = conn.Close()
		}
	default:
		e.serveRaw(conn.(*bufConn), kind == kindTLS)
	}
}

// serveRaw answers one JSON Report line to the first line received. TLS
// bytes on a port that does not terminate TLS land here too: the client then
// fails its handshake on our plaintext answer, as against any plaintext app.
func (e *Echo) serveRaw(c *bufConn, tlsBytes bool) {
	defer c.Close()
	var payload []byte
	if tlsBytes {
		payload, _ = c.r.Peek(c.r.Buffered())
	} else {
		_ = c.SetReadDeadline(time.Now().Add(lineTimeout))
		line, err := c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && len(line) == 0 {
			return
		}
		payload = bytes.TrimRight(line, "\r\n")
	}
	rep := e.report(c)
	rep.Payload = printable(payload, 256)
	e.answerLine(c, rep)
}

// greet is a server-first app (MySQL, SMTP): it writes its Report line as
// soon as the connection is up, before reading anything.
func (e *Echo) greet(c *bufConn) {
	defer c.Close()
	e.answerLine(c, e.report(c))
}

// answerLine writes rep as one JSON line and half-closes.
func (e *Echo) answerLine(c *bufConn, rep Report) {
	rep.Protocol = "tcp"
	b, _ := json.Marshal(rep)
	_ = c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	_, _ = c.Write(append(b, '\n'))
	// Half-close so the client reads our line before the FIN, not a reset.
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

func (e *Echo) report(c *bufConn) Report {
	return Report{
		Workload:   e.workload,
		Port:       e.port.Port,
		TLS:        c.tls,
		RemoteAddr: c.RemoteAddr().String(),
		LocalAddr:  c.LocalAddr().String(),
	}
}

type connKey struct{}

func (e *Echo) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(*bufConn)
	var rep Report
	if c != nil {
		rep = e.report(c)
	}
	rep.Protocol = r.Proto
	rep.Method = r.Method
	rep.Host = r.Host
	rep.Path = r.URL.RequestURI()
	rep.Headers = r.Header.Clone()
	status := http.StatusOK
	if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 200 || n > 599 {
			http.Error(w, "status must be 200..599: "+s, http.StatusBadRequest)
			return
		}
		status = n
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	b, _ := json.Marshal(rep)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// printable returns b as text when it is printable UTF-8, else quoted.
func printable(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
	}
	if utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return string(b)
	}
	q := strconv.QuoteToASCII(string(b))
	return q[1 : len(q)-1]
}

// chanListener hands sniffed connections to an http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
