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
	"net/netip"
	"time"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// Layer kinds and terminators.
const (
	KindPlaintext = "plaintext"
	KindTLS       = "tls"

	ByProxy = "proxy"
	ByApp   = "app"
)

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
	// AccessLogs of each Envoy, by proxy workload ID (accesslog.ParseLog).
	AccessLogs map[string][]accesslog.Entry
	// Decisions are the Istio resources translation used, by proxy workload
	// ID, keyed as translate.Resources.Decisions ("inbound:PORT",
	// "inbound:*", "gateway:PORT", outbound cluster names).
	Decisions map[string]map[string]mesh.Decision
	// Dial is the address the client dialled instead of the URL's host
	// (a check via a gateway: the gateway pod, on the port it listens on);
	// DialNote says why that port differs from the URL's, when it does.
	Dial, DialNote string
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

// Result is one check's outcome and trace (docs/bundles.md, "Results"; the JSON names
// are the `meshtls run -o json` contract).
type Result struct {
	Scenario   string          `json:"scenario"`
	Name       string          `json:"name"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Via        string          `json:"via,omitempty"`
	Result     outcome.Result  `json:"result"`
	Status     int             `json:"status"`
	Body       string          `json:"body,omitempty"`
	Error      string          `json:"error,omitempty"`
	Wire       []outcome.Wire  `json:"wire"`
	Peer       string          `json:"peer"`
	Reason     string          `json:"reason"`
	Hops       []Hop           `json:"hops"`
	Expected   *Expected       `json:"expected,omitempty"`
	Verdict    outcome.Verdict `json:"verdict"`
	Mismatches []string        `json:"mismatches,omitempty"`
	// Artifacts is where the evidence of a failed check was saved.
	Artifacts string `json:"artifacts,omitempty"`
	// Explored: a call meshtls generated (explore), not a Check of the
	// bundle; Dest is its destination in the reachability matrix.
	Explored bool   `json:"explored,omitempty"`
	Dest     string `json:"dest,omitempty"`
	// DurationMS is how long the call and the gathering of its evidence
	// took (JUnit's testcase time).
	DurationMS int64 `json:"durationMs,omitempty"`
}

// Expected is the expectation a Result was compared with.
type Expected struct {
	Result   outcome.Result `json:"result,omitempty"`
	Wire     []outcome.Wire `json:"wire,omitempty"`
	Peer     string         `json:"peer,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Hops     []HopExpected  `json:"hops,omitempty"`
	ServedBy string         `json:"servedBy,omitempty"`
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
	Wire   outcome.Wire `json:"wire"`
	Layers []Layer      `json:"layers,omitempty"` // outermost first; empty: no bytes crossed
	// Sources name the evidence: capture:<pod>, accesslog:<proxy>, app:<pod>.
	Sources       []string `json:"sources,omitempty"`
	Flags         string   `json:"flags,omitempty"` // Envoy response flags seen on either end
	FailureReason string   `json:"failureReason,omitempty"`
	// Decided names the Istio resources that decided this hop's TLS: the
	// sender's DestinationRule (or auto mTLS) and VirtualService route, the
	// receiving gateway's server or sidecar's PeerAuthentication.
	Decided *mesh.Decision `json:"decided,omitempty"`
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
func (h *Hop) Short() outcome.Wire {
	ls := make([]outcome.Wire, len(h.Layers))
	for i, l := range h.Layers {
		switch {
		case l.Kind != KindTLS:
			ls[i] = outcome.Plaintext
		case l.PeerVerified:
			ls[i] = outcome.MTLS
		default:
			ls[i] = outcome.TLS
		}
	}
	return outcome.Layers(ls...)
}
