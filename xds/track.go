package xds

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

// Cluster warming (why an EDS request that looks like an ACK is answered).
//
// Envoy holds its CDS ACK while any cluster warms (ClusterManagerImpl
// pauses CDS requests then: source/common/upstream/cluster_manager_impl.cc,
// updateClusterCounts), and a changed EDS cluster is a new cluster that
// warms until an EDS response reaches it: its subscription re-requests the
// same names, at the version and nonce Envoy already has, and the endpoints
// Envoy holds are used only when the initial fetch times out
// (source/extensions/clusters/eds/eds.cc, onConfigUpdateFailed). istiod's
// clusters set that timeout to 0, forever (Istio's
// pilot/pkg/networking/core/cluster_builder.go, maybeApplyEdsConfig).
// go-control-plane's cache takes the re-request for an ACK (same version,
// no new name) and answers nothing, so the proxy never ACKs CDS: always
// when a Set changes clusters but not endpoints, and by chance when it
// changes both and the EDS response leaves before the CDS one (the
// state-of-the-world server picks among ready responses at random).
// istiod does not meet this: it pushes EDS after every CDS push, in that
// order (pilot/pkg/xds/ads.go, PushOrder), and answers the EDS request that
// follows a CDS response even when it looks like an ACK (pkg/xds/server.go
// ShouldRespond with WatchedResource.AlwaysRespond; pilot/pkg/model
// context.go, WarmingDependencies). We do the same in OnStreamRequest: once
// a CDS response has gone out on a stream, the next EDS request with the
// current nonce has its version_info cleared, so the cache answers it with
// the current endpoints; the debt is paid when an EDS response is sent.
// (Delta xDS is not covered: meshtls's bootstraps use state of the world.)

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
	// edsOwed: a CDS response went out after the last EDS response, so the
	// next EDS request is answered (see "Cluster warming").
	edsOwed bool
}

type sentResponse struct{ nonce, version string }

type nodeTrack struct {
	streams   int
	connected bool              // ever
	acked     map[string]string // type URL -> version last ACKed
	ackNonce  map[string]string // type URL -> the nonce of that ACK
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
			ackNonce: map[string]string{},
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
			// See "NACK handling" (keep the cache from resending) and
			// "Cluster warming" (make it answer) above.
			if version, rewrite := t.request(id, req.GetNode().GetId(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil); rewrite {
				req.VersionInfo = version
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
	switch typeURL {
	case resource.ClusterType:
		st.edsOwed = true
	case resource.EndpointType:
		st.edsOwed = false
	}
}

// request records an ACK or NACK. It says what the request's version_info
// must become before the cache sees it, if anything: the rejected version
// for a NACK of the latest response on the stream ("NACK handling"), none
// for an EDS request the stream owes an answer ("Cluster warming").
func (t *tracker) request(id int64, node, typeURL, nonce, errMsg string, isNACK bool) (string, bool) {
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
		return "", false
	}
	if fresh && t.cb.Connected != nil {
		node := st.node
		events = append(events, func() { t.cb.Connected(node, id) })
	}
	if nonce == "" {
		return "", false // initial request (or re-subscription): neither ACK nor NACK
	}
	sent, ok := st.sent[typeURL]
	if !ok || sent.nonce != nonce {
		// Stale nonce: the proxy answers a response that a newer one
		// superseded; go-control-plane ignores it, and so do we.
		return "", false
	}
	n := t.nodeLocked(st.node)
	node = st.node
	version := sent.version
	seq, err := strconv.ParseUint(version, 10, 64)
	if err != nil {
		return "", false // not a version this server made (it makes sequence numbers)
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
		return version, true
	}
	n.acked[typeURL] = version
	n.ackNonce[typeURL] = nonce
	n.ackedSeq[typeURL] = seq
	if r, ok := n.nack[typeURL]; ok && seq >= r.seq {
		delete(n.nack, typeURL)
	}
	n.notify()
	if t.cb.ACKed != nil {
		events = append(events, func() { t.cb.ACKed(node, typeURL, version) })
	}
	if typeURL == resource.EndpointType && st.edsOwed {
		return "", true // the cache answers a request with no version
	}
	return "", false
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

// describe says what node last ACKed and, per open stream, what was last
// sent to it (version and nonce per type, and whether an EDS answer is owed:
// see "Cluster warming"), for error messages.
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
	var acked []string
	for _, typeURL := range typeOrder {
		v, ok := n.acked[typeURL]
		if !ok {
			v = "nothing"
		} else {
			v += " (nonce " + n.ackNonce[typeURL] + ")"
		}
		acked = append(acked, shortType(typeURL)+"="+v)
	}
	out := fmt.Sprintf("proxy is %s and last ACKed %s", state, strings.Join(acked, " "))
	for _, id := range slices.Sorted(maps.Keys(t.streams)) {
		st := t.streams[id]
		if st.node != node {
			continue
		}
		var sent []string
		for _, typeURL := range typeOrder {
			if r, ok := st.sent[typeURL]; ok {
				sent = append(sent, fmt.Sprintf("%s=%s (nonce %s)", shortType(typeURL), r.version, r.nonce))
			}
		}
		out += fmt.Sprintf("; stream %d was last sent %s, EDS answer owed after CDS: %t", id, strings.Join(sent, " "), st.edsOwed)
	}
	return out
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
