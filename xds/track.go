package xds

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// Callbacks are optional hooks on what proxies do, in the style of
// go-control-plane's server.CallbackFuncs. Nil funcs are skipped. They run on
// the ADS stream goroutine, outside the Server's locks; keep them short.
type Callbacks struct {
	// Connected: a proxy opened an ADS stream and sent its first request.
	Connected func(node string, streamID int64)
	// Disconnected: a proxy's ADS stream ended.
	Disconnected func(node string, streamID int64)
	// ACKed: a proxy accepted version of typeURL.
	ACKed func(node, typeURL, version string)
	// NACKed: a proxy rejected version of typeURL with Envoy's message.
	NACKed func(node, typeURL, version, message string)
}

// NACK handling (why the tracker rewrites requests).
//
// go-control-plane v0.14's snapshot cache answers every request whose
// version_info differs from the snapshot's version (cache/v3/simple.go
// CreateWatch), and has no notion of a NACK. After a NACK Envoy's request
// carries its last *accepted* version, so the cache would resend the rejected
// version at once, forever. We do what istiod does (istio/istio
// pkg/xds/server.go ShouldRespond: a request with error_detail is not
// answered): in OnStreamRequest, a NACK's version_info is rewritten to the
// rejected version before the cache sees it, so the cache thinks the proxy is
// current and stays quiet until the next Set that changes that type. The
// rejected snapshot stays in the cache (we do not roll back): the proxy keeps
// running what it last accepted, LastACKed says exactly that, and a
// reconnecting proxy is offered the current (rejected) version once more and
// NACKs it once per stream.
//
// Versions are per type (Server.Set): a Set that leaves the rejected type
// unchanged keeps its rejected version, so it is not resent, and the new
// snapshot version is born failed for that type (Wait reports the NACK at
// once instead of timing out). A Set that changes the type gives it a new
// version, which the parked watch answers.
//
// Why Wait compares per-type sequence numbers rather than looking versions
// up in the history: an unchanged type keeps an old version forever (CDS may
// stay at "1" through thousands of pushes), and its ACK must keep counting
// after that version has left the bounded history.

// maxVersions bounds the per-node version history kept for Wait (which
// needs the per-type versions of the snapshot it waits for).
const maxVersions = 256

type tracker struct {
	cb Callbacks

	mu      sync.Mutex
	streams map[int64]*streamState
	nodes   map[string]*nodeTrack
}

type streamState struct {
	node string
	sent map[string]sentResponse // type URL -> latest response on this stream
}

type sentResponse struct{ nonce, version string }

type nodeTrack struct {
	streams   int
	connected bool              // ever
	acked     map[string]string // type URL -> version last ACKed
	ackedSeq  map[string]uint64 // type URL -> the same, as a sequence number
	nack      map[string]nackRecord
	versions  map[string]*versionState
	order     []string      // versions oldest first, for pruning
	changed   chan struct{} // closed and replaced on every change
}

// nackRecord is the latest NACK of one type that no later ACK superseded:
// snapshot versions set afterwards that keep the type at that version are
// born failed.
type nackRecord struct {
	seq uint64
	msg string
}

type versionState struct {
	required map[string]uint64 // type URL -> the type's version (sequence) in this snapshot
	all      map[string]uint64 // every type, for TypeVersions
	nacked   map[string]string // type URL -> Envoy's error message
}

func newTracker(cb Callbacks) *tracker {
	return &tracker{cb: cb, streams: map[int64]*streamState{}, nodes: map[string]*nodeTrack{}}
}

// nodeLocked returns the node's state, creating it. t.mu must be held.
func (t *tracker) nodeLocked(node string) *nodeTrack {
	n := t.nodes[node]
	if n == nil {
		n = &nodeTrack{
			acked:    map[string]string{},
			ackedSeq: map[string]uint64{},
			nack:     map[string]nackRecord{},
			versions: map[string]*versionState{},
			changed:  make(chan struct{}),
		}
		t.nodes[node] = n
	}
	return n
}

func (n *nodeTrack) notify() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// expect records that snapshot version of node needs each required
// type ACKed at the given per-type sequence; all has every type's.
func (t *tracker) expect(node, version string, required, all map[string]uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodeLocked(node)
	vs := &versionState{required: required, all: all, nacked: map[string]string{}}
	for typeURL, ts := range required {
		if r, ok := n.nack[typeURL]; ok && r.seq == ts {
			vs.nacked[typeURL] = r.msg // still the rejected content: it will not be resent
		}
	}
	n.versions[version] = vs
	n.order = append(n.order, version)
	if len(n.order) > maxVersions {
		delete(n.versions, n.order[0])
		n.order = n.order[1:]
	}
}

func (t *tracker) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamClosedFunc:      func(id int64, _ *core.Node) { t.closed(id) },
		DeltaStreamClosedFunc: func(id int64, _ *core.Node) { t.closed(id) },
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			if nacked := t.request(id, req.GetNode().GetId(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil); nacked != "" {
				// See "NACK handling" above: keep the cache from resending.
				req.VersionInfo = nacked
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			t.response(id, req.GetNode().GetId(), resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
		},
		// Delta: a NACK does not cause a resend (the delta cache tracks what it
		// sent per resource), so only tracking is needed.
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			t.request(id, req.GetNode().GetId(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
			return nil
		},
		StreamDeltaResponseFunc: func(id int64, req *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			t.response(id, req.GetNode().GetId(), resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
		},
	}
}

// streamLocked returns the stream's state, binding it to node on first sight.
func (t *tracker) streamLocked(id int64, node string) (*streamState, bool) {
	st := t.streams[id]
	if st != nil {
		return st, false
	}
	if node == "" {
		return nil, false
	}
	st = &streamState{node: node, sent: map[string]sentResponse{}}
	t.streams[id] = st
	n := t.nodeLocked(node)
	n.streams++
	n.connected = true
	n.notify()
	return st, true
}

func (t *tracker) response(id int64, node, typeURL, nonce, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, _ := t.streamLocked(id, node)
	if st == nil {
		return
	}
	st.sent[typeURL] = sentResponse{nonce: nonce, version: version}
}

// request records an ACK or NACK. It returns the rejected version if req is
// a NACK of the latest response on the stream, else "".
func (t *tracker) request(id int64, node, typeURL, nonce, errMsg string, isNACK bool) string {
	var events []func()
	defer func() {
		for _, e := range events {
			e()
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	st, fresh := t.streamLocked(id, node)
	if st == nil {
		return ""
	}
	if fresh && t.cb.Connected != nil {
		node := st.node
		events = append(events, func() { t.cb.Connected(node, id) })
	}
	if nonce == "" {
		return "" // initial request (or re-subscription): neither ACK nor NACK
	}
	sent, ok := st.sent[typeURL]
	if !ok || sent.nonce != nonce {
		// Stale nonce: the proxy answers a response that a newer one
		// superseded; go-control-plane ignores it, and so do we.
		return ""
	}
	n := t.nodeLocked(st.node)
	node = st.node
	version := sent.version
	seq, err := strconv.ParseUint(version, 10, 64)
	if err != nil {
		return "" // not a version this server made (it makes sequence numbers)
	}
	if isNACK {
		// Every snapshot carrying this type at this version fails, also
		// those set after it was sent (see "NACK handling").
		n.nack[typeURL] = nackRecord{seq: seq, msg: errMsg}
		for _, vs := range n.versions {
			if ts, ok := vs.required[typeURL]; ok && ts == seq {
				vs.nacked[typeURL] = errMsg
			}
		}
		n.notify()
		if t.cb.NACKed != nil {
			events = append(events, func() { t.cb.NACKed(node, typeURL, version, errMsg) })
		}
		return version
	}
	n.acked[typeURL] = version
	n.ackedSeq[typeURL] = seq
	if r, ok := n.nack[typeURL]; ok && seq >= r.seq {
		delete(n.nack, typeURL)
	}
	n.notify()
	if t.cb.ACKed != nil {
		events = append(events, func() { t.cb.ACKed(node, typeURL, version) })
	}
	return ""
}

func (t *tracker) closed(id int64) {
	t.mu.Lock()
	st := t.streams[id]
	delete(t.streams, id)
	if st != nil {
		n := t.nodeLocked(st.node)
		n.streams--
		n.notify()
	}
	t.mu.Unlock()
	if st != nil && t.cb.Disconnected != nil {
		t.cb.Disconnected(st.node, id)
	}
}

// satisfiedLocked reports whether n runs version vs for typeURL: it ACKed
// the type's version in vs or a later one. A type left unchanged keeps its
// version, so the ACK it already had counts (and neither state of the world
// nor delta sends anything for it).
func (n *nodeTrack) satisfiedLocked(vs *versionState, typeURL string) bool {
	a, ok := n.ackedSeq[typeURL]
	return ok && a >= vs.required[typeURL]
}

func (t *tracker) wait(ctx context.Context, node, version string) error {
	for {
		t.mu.Lock()
		n := t.nodeLocked(node)
		vs := n.versions[version]
		if vs == nil {
			t.mu.Unlock()
			return fmt.Errorf("xds: node %s has no version %q (Set returns the versions to wait for; only the last %d are kept)", node, version, maxVersions)
		}
		var missing []string
		for _, typeURL := range typeOrder {
			if _, ok := vs.required[typeURL]; !ok {
				continue
			}
			if msg, ok := vs.nacked[typeURL]; ok {
				t.mu.Unlock()
				return fmt.Errorf("xds: node %s rejected (NACK) %s version %s (of snapshot version %s): %s", node, shortType(typeURL), strconv.FormatUint(vs.required[typeURL], 10), version, msg)
			}
			if !n.satisfiedLocked(vs, typeURL) {
				missing = append(missing, shortType(typeURL))
			}
		}
		if len(missing) == 0 {
			t.mu.Unlock()
			return nil
		}
		changed := n.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("xds: node %s did not ACK version %s (%s missing): %w; %s", node, version, strings.Join(missing, ", "), ctx.Err(), t.describe(node))
		}
	}
}

// describe says what node last ACKed, for error messages.
func (t *tracker) describe(node string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[node]
	if n == nil || !n.connected {
		return "the proxy never connected to the xDS server (is Envoy running, and is its bootstrap pointing at this server's socket?)"
	}
	state := "connected"
	if n.streams == 0 {
		state = "disconnected"
	}
	var parts []string
	for _, typeURL := range typeOrder {
		v, ok := n.acked[typeURL]
		if !ok {
			v = "nothing"
		}
		parts = append(parts, shortType(typeURL)+"="+v)
	}
	return fmt.Sprintf("proxy is %s and last ACKed %s", state, strings.Join(parts, " "))
}

func (t *tracker) typeVersions(node, version string) map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[node]
	if n == nil || n.versions[version] == nil {
		return nil
	}
	out := map[string]string{}
	for typeURL, ts := range n.versions[version].all {
		out[shortType(typeURL)] = strconv.FormatUint(ts, 10)
	}
	return out
}

func (t *tracker) lastACKed(node string) map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[node]
	if n == nil {
		return nil
	}
	out := make(map[string]string, len(n.acked))
	for typeURL, v := range n.acked {
		out[shortType(typeURL)] = v
	}
	return out
}

// shortType names a type URL the way Envoy docs do (LDS, CDS, ...).
func shortType(typeURL string) string {
	switch typeURL {
	case resource.ListenerType:
		return "LDS"
	case resource.ClusterType:
		return "CDS"
	case resource.RouteType:
		return "RDS"
	case resource.EndpointType:
		return "EDS"
	case resource.SecretType:
		return "SDS"
	}
	return typeURL
}
