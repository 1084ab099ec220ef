// Package trace is the evidence model of a check: from what was observed
// during one call (the client's result, the first flight of every TCP
// connection captured in each pod, each Envoy's JSON access log, the echo
// app's report) it rebuilds the chain of network hops with the TLS layers on
// each, compares that with the check's expectation and renders it.
//
// It is pure: no Docker, no network. The harness collects the observations
// and fills Observations; Build, Evaluate, Explain and Table do the rest.
package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/pod"
)

// Outcome vocabulary (DESIGN.md "bundle format": expect.result).
const (
	ResultOK       = "ok"
	ResultReset    = "reset"
	ResultRefused  = "refused"
	ResultTimeout  = "timeout"
	ResultTLSError = "tls-error"
	// ResultFail is an expectation only: any outcome but ok.
	ResultFail = "fail"
)

// Wire vocabulary, one entry per network hop (DESIGN.md: expect.wire).
const (
	WirePlaintext = "plaintext"
	WireTLS       = "tls"
	WireMTLS      = "mtls"
	WireNone      = "none"
)

// Layer kinds and terminators.
const (
	KindPlaintext = "plaintext"
	KindTLS       = "tls"

	ByProxy = "proxy"
	ByApp   = "app"
)

// Verdicts.
const (
	VerdictPass   = "pass"
	VerdictFail   = "fail"
	VerdictReport = "report"
)

// PeerNone is the peer of a hop whose receiver verified no client certificate.
const PeerNone = "none"

// Observations is everything the harness collected for one check.
type Observations struct {
	Scenario string
	Check    *mesh.Check
	// Client is the calling pod's workload ID. Empty: resolved from Check.From.
	Client string
	Call   *pod.CallResult
	// Flows captured on each pod's interface, by pod workload ID. Connections
	// are matched by 5-tuple, so passing flows older than the check is safe
	// (and needed when Envoy reuses a pooled upstream connection).
	Flows map[string][]pod.Flow
	// AccessLogs of each Envoy, by proxy workload ID (see ParseAccessLog).
	AccessLogs map[string][]LogEntry
	// Pods maps every pod IP to its workload (see PodsFromMesh).
	Pods map[netip.Addr]PodInfo
	// Since, when set, limits the fallback matching (by destination only,
	// used when Envoy logged no upstream local address) to flows seen at or
	// after this time, so a failed attempt is not matched to an old connection.
	Since time.Time
}

// PodInfo says what runs at a pod IP.
type PodInfo struct {
	ID      string // workload ID, namespace/name
	Sidecar bool   // an Envoy sidecar captures the pod's traffic
	Gateway bool   // a standalone Envoy gateway
}

// HasProxy reports whether an Envoy answers for this pod.
func (p PodInfo) HasProxy() bool { return p.Sidecar || p.Gateway }

// PodsFromMesh builds Observations.Pods from a mesh and its address plan.
func PodsFromMesh(m *mesh.Mesh, plan map[string]netip.Addr) map[netip.Addr]PodInfo {
	out := make(map[netip.Addr]PodInfo, len(m.Workloads))
	for _, w := range m.Workloads {
		a, ok := plan[w.ID()]
		if !ok {
			continue
		}
		out[a] = PodInfo{ID: w.ID(), Sidecar: w.HasProxy() && !w.Gateway, Gateway: w.Gateway && !w.External}
	}
	return out
}

// Result is one check's outcome and trace (DESIGN.md "What a result holds";
// the JSON names are the `meshtls run -o json` contract).
type Result struct {
	Scenario   string    `json:"scenario"`
	Name       string    `json:"name"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Via        string    `json:"via,omitempty"`
	Result     string    `json:"result"`
	Status     int       `json:"status"`
	Body       string    `json:"body,omitempty"`
	Error      string    `json:"error,omitempty"`
	Wire       []string  `json:"wire"`
	Peer       string    `json:"peer"`
	Reason     string    `json:"reason"`
	Hops       []Hop     `json:"hops"`
	Expected   *Expected `json:"expected,omitempty"`
	Verdict    string    `json:"verdict"`
	Mismatches []string  `json:"mismatches,omitempty"`
	// Artifacts is where the evidence of a failed check was saved.
	Artifacts string `json:"artifacts,omitempty"`
}

// Expected is the expectation a Result was compared with.
type Expected struct {
	Result string        `json:"result,omitempty"`
	Wire   []string      `json:"wire,omitempty"`
	Peer   string        `json:"peer,omitempty"`
	Reason string        `json:"reason,omitempty"`
	Hops   []HopExpected `json:"hops,omitempty"`
}

// HopExpected is what one hop's outer TLS layer was expected to show.
type HopExpected struct {
	TLSVersion string   `json:"tlsVersion,omitempty"`
	SNI        string   `json:"sni,omitempty"`
	ALPN       []string `json:"alpn,omitempty"`
}

// Hop is one TCP connection between two different pods.
type Hop struct {
	From string `json:"from"` // workload ID, or ip:port when unknown
	To   string `json:"to"`
	Src  string `json:"src,omitempty"` // ip:port of the initiator, when known
	Dst  string `json:"dst"`           // ip:port dialled
	// Wire is the short form: plaintext, tls, mtls, tls+tls, mtls+tls, none.
	Wire   string  `json:"wire"`
	Layers []Layer `json:"layers,omitempty"` // outermost first; empty: no bytes crossed
	// Sources name the evidence: capture:<pod>, accesslog:<proxy>, app:<pod>.
	Sources       []string `json:"sources,omitempty"`
	Flags         string   `json:"flags,omitempty"` // Envoy response flags seen on either end
	FailureReason string   `json:"failureReason,omitempty"`
	// Notes record evidence that disagreed with the rest.
	Notes []string `json:"notes,omitempty"`
}

// Layer is one protocol layer of a hop.
type Layer struct {
	Kind    string   `json:"kind"` // plaintext | tls
	Version string   `json:"version,omitempty"`
	SNI     string   `json:"sni,omitempty"`
	ALPN    []string `json:"alpn,omitempty"`
	// PeerVerified: the receiver required and verified a client certificate.
	PeerVerified bool   `json:"peerVerified"`
	Peer         string `json:"peer,omitempty"` // identity the receiver verified (URI SAN, else subject)
	// Server is the identity the initiator saw in the server certificate.
	Server       string `json:"server,omitempty"`
	TerminatedBy string `json:"terminatedBy,omitempty"` // proxy | app; empty: not known to be terminated
}

// Short is the hop's wire form: the outer layer (plaintext, tls, or mtls
// when the receiver verified a client certificate), then "+" and each inner
// TLS layer the same way; "none" when no bytes crossed.
func (h *Hop) Short() string {
	if len(h.Layers) == 0 {
		return WireNone
	}
	s := ""
	for i, l := range h.Layers {
		if i > 0 {
			s += "+"
		}
		switch {
		case l.Kind != KindTLS:
			s += WirePlaintext
		case l.PeerVerified:
			s += WireMTLS
		default:
			s += WireTLS
		}
	}
	return s
}

// LogEntry is one line of an Envoy JSON access log. Every value is kept as
// text; Envoy's "-" (and JSON null) become "". Unknown keys are ignored.
type LogEntry struct {
	Start     string `json:"start"`
	Proxy     string `json:"proxy"`
	Direction string `json:"direction"` // outbound | inbound | gateway
	// Event is Envoy's %ACCESS_LOG_TYPE%: TcpUpstreamConnected (a tcp_proxy
	// line written when the upstream connects), TcpConnectionEnd,
	// DownstreamEnd (an HTTP request), NotSet (no filter chain matched).
	Event                            string `json:"event"`
	Listener                         string `json:"listener"`
	Method                           string `json:"method"`
	Path                             string `json:"path"`
	Authority                        string `json:"authority"`
	Protocol                         string `json:"protocol"`
	ResponseCode                     string `json:"response_code"`
	ResponseFlags                    string `json:"response_flags"`
	ResponseCodeDetails              string `json:"response_code_details"`
	ConnectionTerminationDetails     string `json:"connection_termination_details"`
	UpstreamTransportFailureReason   string `json:"upstream_transport_failure_reason"`
	DownstreamTransportFailureReason string `json:"downstream_transport_failure_reason"`
	UpstreamCluster                  string `json:"upstream_cluster"`
	UpstreamHost                     string `json:"upstream_host"`
	UpstreamLocalAddress             string `json:"upstream_local_address"`
	DownstreamLocalAddress           string `json:"downstream_local_address"`
	DownstreamRemoteAddress          string `json:"downstream_remote_address"`
	RequestedServerName              string `json:"requested_server_name"`
	DownstreamTLSVersion             string `json:"downstream_tls_version"`
	DownstreamPeerURISAN             string `json:"downstream_peer_uri_san"`
	DownstreamPeerSubject            string `json:"downstream_peer_subject"`
	UpstreamTLSVersion               string `json:"upstream_tls_version"`
	UpstreamPeerURISAN               string `json:"upstream_peer_uri_san"`
	UpstreamPeerSubject              string `json:"upstream_peer_subject"`
	FilterChainName                  string `json:"filter_chain_name"`
	Duration                         string `json:"duration"`
	BytesReceived                    string `json:"bytes_received"`
	BytesSent                        string `json:"bytes_sent"`
}

// UnmarshalJSON accepts strings, numbers and null for every key, because
// Envoy's json_format keeps the type of each command operator (%DURATION%
// and %RESPONSE_CODE% are numbers).
func (e *LogEntry) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	norm := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		switch v := v.(type) {
		case nil:
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = strconv.FormatBool(v)
		default:
			enc, _ := json.Marshal(v)
			s = string(enc)
		}
		if s == "-" {
			s = ""
		}
		norm[k] = s
	}
	enc, err := json.Marshal(norm)
	if err != nil {
		return err
	}
	type plain LogEntry // no UnmarshalJSON: no recursion
	var p plain
	if err := json.Unmarshal(enc, &p); err != nil {
		return err
	}
	*e = LogEntry(p)
	return nil
}

// ParseAccessLog reads an Envoy access log of one JSON object per line.
// Blank lines are skipped; anything else that is not a JSON object is an
// error naming the line, since it means the log format is not ours.
func ParseAccessLog(r io.Reader) ([]LogEntry, error) {
	var out []LogEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return out, fmt.Errorf("access log line %d is not a JSON object (%v): the proxy's access log must use the harness's json_format", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading access log: %w", err)
	}
	return out, nil
}
