// Package outcome is the vocabulary a check's outcome is written in: the
// Result of a call (produced by pod's client), the Wire form of each hop and
// the Verdict (produced by harness/trace). Bundles expect these words
// (mesh validates them), the trace compares them, and the CLI prints them
// (`meshtls run -o json` is a contract: the words do not change).
package outcome

import (
	"strconv"
	"strings"
)

// Result is what the client saw of one call.
type Result string

const (
	OK       Result = "ok"        // a 2xx answer, or the echo app's line over TCP
	Reset    Result = "reset"     // closed before any answer (curl exit 56)
	Refused  Result = "refused"   // connection refused
	Timeout  Result = "timeout"   // no answer before the deadline
	TLSError Result = "tls-error" // the TLS handshake failed (curl exit 35), or the server rejected the client certificate
	DNSError Result = "dns-error" // the name did not resolve
	Error    Result = "error"     // anything else; the call's error says what

	// Failed is an expectation only, never observed: any result but ok.
	Failed Result = "fail"
)

// httpPrefix precedes the status of a non-2xx HTTP answer: http-503.
const httpPrefix = "http-"

// HTTP is the result of a non-2xx HTTP answer.
func HTTP(status int) Result { return Result(httpPrefix + strconv.Itoa(status)) }

// HTTPStatus is the status of an http-NNN result.
func (r Result) HTTPStatus() (int, bool) {
	code, ok := strings.CutPrefix(string(r), httpPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(code)
	return n, err == nil
}

// Expectable reports whether a check may expect r: ok, http-NNN (100-599),
// reset, refused, timeout, tls-error, or fail (any of them but ok).
// dns-error and error are never what a TLS setting causes, so a bundle
// cannot ask for them.
func (r Result) Expectable() bool {
	switch r {
	case OK, Reset, Refused, Timeout, TLSError, Failed:
		return true
	}
	n, ok := r.HTTPStatus()
	return ok && len(r) == len(httpPrefix)+3 && n >= 100 && n <= 599
}

// ExpectableResults lists the results a check may expect, for messages.
const ExpectableResults = "ok, http-NNN, reset, refused, timeout, tls-error, fail"

// Wire is the form of one network hop: its outer layer, then "+" and each
// inner TLS layer. A layer is plaintext, tls, or mtls when the receiver
// verified a client certificate; None when no bytes crossed.
type Wire string

const (
	Plaintext Wire = "plaintext"
	TLS       Wire = "tls"
	MTLS      Wire = "mtls"
	None      Wire = "none"
)

// Layers joins the layers of one hop, outermost first: Layers(MTLS, TLS) is
// "mtls+tls".
func Layers(ls ...Wire) Wire {
	if len(ls) == 0 {
		return None
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = string(l)
	}
	return Wire(strings.Join(parts, "+"))
}

// Wires are the hop forms a check may expect.
var Wires = []Wire{Plaintext, TLS, MTLS, Layers(TLS, TLS), Layers(MTLS, TLS), None}

// Has reports whether any layer of the hop is w (mtls in "mtls+tls").
func (h Wire) Has(w Wire) bool {
	for l := range strings.SplitSeq(string(h), "+") {
		if Wire(l) == w {
			return true
		}
	}
	return false
}

// Verdict is how a result compares with its check's expectation.
type Verdict string

const (
	Pass   Verdict = "pass"   // the expectation held
	Fail   Verdict = "fail"   // it did not
	Report Verdict = "report" // there was none
)

// Absent is written where an expectation or observation names nothing: no
// verified peer, no TLS version or no SNI on a hop.
const Absent = "none"

// PeerNone is the peer of a hop whose receiver verified no client certificate.
const PeerNone = Absent

// Join joins the wire forms of several hops with sep.
func Join(ws []Wire, sep string) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = string(w)
	}
	return strings.Join(parts, sep)
}
