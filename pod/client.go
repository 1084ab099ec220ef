package pod

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshtls/meshtls/outcome"
)

const (
	defaultTimeout = 5 * time.Second
	maxBody        = 64 << 10
)

// DefaultCAs are trusted by Call when CallRequest.CAs is empty.
var DefaultCAs = []string{"ingress", "app"}

// Call makes one call as described by req, on one fresh TCP connection, and
// reports what the client saw. It never returns an error: failures are
// classified into CallResult.Result (see api.go) with the detail in Error.
func Call(ctx context.Context, req CallRequest, paths Paths) CallResult {
	start := time.Now()
	res := call(ctx, req, paths)
	res.DurationMS = time.Since(start).Milliseconds()
	return res
}

func call(ctx context.Context, req CallRequest, paths Paths) (res CallResult) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return CallResult{Result: outcome.Error, Error: fmt.Sprintf("bad url %q: %v", req.URL, err)}
	}
	var secure bool
	var defPort string
	switch u.Scheme {
	case "http":
		defPort = "80"
	case "https":
		secure, defPort = true, "443"
	case "tcp":
	case "tls":
		secure = true
	default:
		return CallResult{Result: outcome.Error, Error: fmt.Sprintf("url %q: scheme must be http, https, tcp or tls", req.URL)}
	}
	host := u.Hostname()
	if host == "" {
		return CallResult{Result: outcome.Error, Error: fmt.Sprintf("url %q has no host", req.URL)}
	}
	port := u.Port()
	if port == "" {
		if defPort == "" {
			return CallResult{Result: outcome.Error, Error: fmt.Sprintf("url %q: %s needs a port", req.URL, u.Scheme)}
		}
		port = defPort
	}
	addr := net.JoinHostPort(host, port)
	dialAddr := addr
	if req.Dial != "" {
		dialAddr = req.Dial
	}

	var tlsConf *tls.Config
	if secure {
		if tlsConf, err = clientTLS(req, u.Scheme, host, paths); err != nil {
			return CallResult{Result: outcome.Error, Error: err.Error()}
		}
	}

	timeout := defaultTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", dialAddr)
	if err != nil {
		res.Result, res.Error = classifyCtx(ctx, err, "connect to "+dialAddr)
		res.RemoteAddr = dialAddr
		return res
	}
	res.LocalAddr = raw.LocalAddr().String()
	res.RemoteAddr = raw.RemoteAddr().String()
	_ = raw.SetDeadline(deadline)
	// Closing on cancel makes every blocking step honour ctx.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	defer raw.Close()

	conn := raw
	certRequested := false
	if tlsConf != nil {
		present := tlsConf.GetClientCertificate
		tlsConf.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			certRequested = true
			if present == nil {
				return &tls.Certificate{}, nil // none: the server may require one
			}
			return present(cri)
		}
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			// Any failure before the session is up is a TLS failure, as curl
			// reports it (exit 35), reset or not; Error says which.
			r, msg := classifyCtx(ctx, err, "TLS handshake with "+dialAddr)
			if r != outcome.Timeout {
				r = outcome.TLSError
			}
			res.Result, res.Error = r, msg
			return res
		}
		res.TLS = tlsInfo(tc.ConnectionState(), tlsConf.ServerName)
		// A server-first app's greeting is its verdict: the read below
		// gets the alert of a rejected certificate instead.
		if certRequested && tc.ConnectionState().Version == tls.VersionTLS13 && !req.ServerFirst {
			if err := awaitCertVerdict(tc, deadline); err != nil {
				res.Result, res.Error = outcome.TLSError, "TLS handshake with "+dialAddr+": the server rejected the client certificate after the handshake: "+err.Error()
				return res
			}
		}
		conn = tc
	}
	if ctx.Err() != nil {
		res.Result, res.Error = outcome.Timeout, "timed out after "+timeout.String()
		return res
	}

	switch {
	case res.TLS != nil && res.TLS.ALPN == "h2":
		h2Call(ctx, conn, u, &res)
	case u.Scheme == "http" || u.Scheme == "https":
		httpCall(ctx, conn, u, &res)
	case req.ServerFirst:
		readLine(ctx, conn, &res)
	default:
		lineCall(ctx, conn, req.Payload, &res)
	}
	return res
}

// clientTLS trusts only the named CAs and verifies the server's certificate
// for the URL host whatever SNI is sent, so "no SNI" is still verified.
func clientTLS(req CallRequest, scheme, host string, paths Paths) (*tls.Config, error) {
	cas := req.CAs
	if len(cas) == 0 {
		cas = DefaultCAs
	}
	pool, err := paths.CAPool(cas)
	if err != nil {
		return nil, err
	}
	sni := host
	if req.SNI != nil {
		sni = *req.SNI
	}
	if net.ParseIP(sni) != nil {
		sni = "" // TLS forbids IP literals in SNI; Go would drop it anyway
	}
	conf := &tls.Config{
		ServerName: sni,
		// Verification is done below, for the URL host: Go's own check would
		// use ServerName, which may be empty or deliberately different.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			opts := x509.VerifyOptions{
				Roots:         pool,
				DNSName:       host,
				Intermediates: x509.NewCertPool(),
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("server certificate (subject %q) not valid for %q with CAs %v: %w",
					cs.PeerCertificates[0].Subject, host, cas, err)
			}
			return nil
		},
	}
	conf.MinVersion, conf.MaxVersion = req.MinVersion, req.MaxVersion
	for _, name := range req.Ciphers {
		id, ok := cipherID(name)
		if !ok {
			return nil, fmt.Errorf("unknown cipher suite %q", name)
		}
		conf.CipherSuites = append(conf.CipherSuites, id)
	}
	switch {
	case req.ALPN != nil:
		conf.NextProtos = req.ALPN
	case scheme == "https":
		conf.NextProtos = []string{"http/1.1"} // the default client speaks HTTP/1.1
	}
	if req.ClientCert != "" {
		cert, err := paths.LoadKeyPair(req.ClientCert)
		if err != nil {
			return nil, err
		}
		// Present it whatever CAs the server asks for, like curl --cert:
		// a rejected certificate is a result we want to observe.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return conf, nil
}

// certVerdictWait bounds how long a TLS 1.3 client listens, before sending
// anything, for the server's verdict on the client certificate.
const certVerdictWait = 100 * time.Millisecond

// awaitCertVerdict reads briefly before the first write. In TLS 1.3 a server
// that asked for a client certificate rejects it only after the client's
// handshake is done; if the client wrote first, the server's close could
// reach it as a reset before the alert was read, and the same rejection
// would be reported now as tls-error, now as reset. Reading first makes it
// the alert every time. Session tickets are consumed by crypto/tls; an
// accepted certificate leaves the read waiting until the short deadline.
func awaitCertVerdict(tc *tls.Conn, deadline time.Time) error {
	_ = tc.SetReadDeadline(time.Now().Add(certVerdictWait))
	defer tc.SetReadDeadline(deadline)
	var b [1]byte
	n, err := tc.Read(b[:])
	if n > 0 {
		return errors.New("the server sent data before the request")
	}
	if err == nil || isTimeout(err) {
		return nil
	}
	return err
}

func httpCall(ctx context.Context, conn net.Conn, u *url.URL, res *CallResult) {
	path := u.RequestURI()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+path, nil)
	if err != nil {
		res.Result, res.Error = outcome.Error, err.Error()
		return
	}
	// Like curl, leave a default port out of Host.
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		hr.Host = u.Hostname()
		if strings.Contains(hr.Host, ":") {
			hr.Host = "[" + hr.Host + "]"
		}
	}
	hr.Header.Set("User-Agent", "meshtls-pod")
	hr.Header.Set("Accept", "*/*")
	if err := hr.Write(conn); err != nil {
		res.Result, res.Error = classifyCtx(ctx, err, "send request")
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), hr)
	if err != nil {
		res.Result, res.Error = classifyCtx(ctx, err, "read response")
		return
	}
	readResponse(resp, res)
}

// readResponse records an HTTP answer: status, body and the echo report in it.
func readResponse(resp *http.Response, res *CallResult) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Status = resp.StatusCode
	res.Body = string(body)
	if err != nil {
		res.Error = "reading body: " + err.Error()
	}
	var rep Report
	if json.Unmarshal(body, &rep) == nil && rep.Workload != "" {
		res.Report = &rep
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		res.Result = outcome.OK
	} else {
		res.Result = outcome.HTTP(resp.StatusCode)
	}
}

func lineCall(ctx context.Context, conn net.Conn, payload string, res *CallResult) {
	if payload == "" {
		payload = "hello"
	}
	if _, err := io.WriteString(conn, payload+"\n"); err != nil {
		res.Result, res.Error = classifyCtx(ctx, err, "send payload")
		return
	}
	readLine(ctx, conn, res)
}

// readLine reads the one-line answer of a raw TCP app: after our line, or
// as the greeting of a server-first app.
func readLine(ctx context.Context, conn net.Conn, res *CallResult) {
	br := bufio.NewReaderSize(conn, maxBody)
	line, err := br.ReadSlice('\n')
	if len(line) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.EOF
		}
		res.Result, res.Error = classifyCtx(ctx, err, "read answer")
		return
	}
	line = bytes.TrimRight(line, "\r\n")
	res.Body = string(line)
	var rep Report
	if json.Unmarshal(line, &rep) == nil && rep.Workload != "" {
		res.Report = &rep
		res.Result = outcome.OK
		return
	}
	// An HTTP server (e.g. a proxy's HTTP listener) answering our line.
	if f := strings.Fields(string(line)); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/1.") {
		if n, err := strconv.Atoi(f[1]); err == nil {
			res.Status = n
			res.Result = outcome.HTTP(n)
			return
		}
	}
	res.Result = outcome.Error
	res.Error = "answer is not an echo report: " + printable(line, 128)
}

// h2Call makes the request over HTTP/2 on a TLS connection that negotiated
// h2 (the check offered it in its ALPN), through net/http's own HTTP/2
// client on that one connection.
func h2Call(ctx context.Context, conn net.Conn, u *url.URL, res *CallResult) {
	var protos http.Protocols
	protos.SetHTTP2(true)
	used := false
	tr := &http.Transport{
		Protocols: &protos,
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, errors.New("the check's connection is already used")
			}
			used = true
			return conn, nil
		},
	}
	defer tr.CloseIdleConnections()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Result, res.Error = "error", err.Error()
		return
	}
	hr.Header.Set("User-Agent", "meshtls-pod")
	resp, err := tr.RoundTrip(hr)
	if err != nil {
		res.Result, res.Error = classifyCtx(ctx, err, "HTTP/2 request")
		return
	}
	readResponse(resp, res)
}

// classifyCtx is classify, except that any failure after our own deadline
// passed is a timeout (the deadline closes the connection under the call).
func classifyCtx(ctx context.Context, err error, what string) (outcome.Result, string) {
	if ctx.Err() != nil {
		return outcome.Timeout, what + ": no answer before the deadline: " + err.Error()
	}
	return classify(err, what)
}

// classify maps a network error to the CallResult vocabulary.
func classify(err error, what string) (outcome.Result, string) {
	msg := what + ": " + err.Error()
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		return outcome.DNSError, msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return outcome.Timeout, msg
	case isTimeout(err):
		return outcome.Timeout, msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcome.Refused, msg
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the peer after the handshake, e.g. TLS 1.3
		// servers rejecting the client certificate on first read.
		return outcome.TLSError, msg
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Closed before any answer: curl's exit 56.
		return outcome.Reset, msg
	}
	return outcome.Error, msg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cipherID is the crypto/tls number of a cipher suite's IANA name.
func cipherID(name string) (uint16, bool) {
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, cs := range list {
			if cs.Name == name {
				return cs.ID, true
			}
		}
	}
	return 0, false
}
