package trace

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// maxHops bounds the chain walk (a routing loop through gateways must not hang us).
const maxHops = 8

// bodyMax is how much of the body a Result keeps.
const bodyMax = 160

// Build reconstructs a check's hop chain from its observations. The result
// has no verdict yet; call Evaluate.
//
// The walk: the first hop is the client pod's connection to its dial
// address — made by the app itself (CallResult LocalAddr→RemoteAddr) or,
// when the client has a sidecar, by the sidecar (its outbound access-log
// line for the app's connection gives upstream_local_address→upstream_host).
// A hop received by a gateway continues with the gateway's upstream
// connection from the same access-log line; a hop received by anything else
// ends the chain (a sidecar only forwards to its own app over loopback,
// which is not a network hop).
func Build(obs *Observations) *Result {
	b := newBuilder(obs)
	return b.build()
}

type builder struct {
	obs   *Observations
	ipPod map[netip.Addr]PodInfo
	idIP  map[string]netip.Addr
}

func newBuilder(obs *Observations) *builder {
	b := &builder{obs: obs, ipPod: obs.Pods, idIP: map[string]netip.Addr{}}
	for a, p := range obs.Pods {
		b.idIP[p.ID] = a
	}
	return b
}

// draft is a hop under construction.
type draft struct {
	hop         Hop
	layers      []Layer // TLS layers, outermost first (empty = plaintext)
	established bool    // some evidence says bytes crossed
	flow        *pod.Flow
	recvPod     PodInfo
	recv        *accesslog.Entry
	reasons     []string
}

func (b *builder) build() *Result {
	obs := b.obs
	res := &Result{Scenario: obs.Scenario, Verdict: outcome.Report}
	if c := obs.Check; c != nil {
		res.Name, res.From, res.To, res.Via = c.Name, c.From, c.To, c.Via
		res.Explored, res.Dest = c.Explored, c.Dest
	}
	call := obs.Call
	if call == nil {
		call = &pod.CallResult{Result: outcome.Error, Error: "no call result was recorded"}
	}
	res.Result, res.Status, res.Error = call.Result, call.Status, call.Error
	res.Body = short(call.Body, bodyMax)

	client := b.clientPod(call)
	in := b.clientLayers(call)

	// First hop: who sends it, and on which tuple.
	var sender *accesslog.Entry
	var src, dst string
	senderPod := client
	if client.Sidecar {
		sender = b.clientOutbound(client.ID, call)
		if sender != nil {
			src, dst = sender.UpstreamLocalAddress, sender.UpstreamHost
		}
	} else if call.LocalAddr != "" {
		src = call.LocalAddr
	}
	if dst == "" {
		dst = call.RemoteAddr
	}
	// A client that dialled a cluster IP, or a service port kube-proxy
	// translates, left its pod for the translated destination: its own
	// capture holds the connection by source, after the DNAT. A sidecar's
	// proxy dials cluster IPs too (a DNS cluster resolving a Service's name,
	// a passthrough), and sidecar pods carry the same DNAT.
	var dialled string
	if src != "" {
		if f := b.flowFrom(client.ID, src); f != nil && f.Dst != dst {
			dialled, dst = dst, f.Dst
		}
	}
	if dst == "" {
		dst = b.dialTarget()
	}

	var drafts []*draft
	for range maxHops {
		d := b.hop(senderPod, sender, src, dst, in)
		drafts = append(drafts, d)
		// Only a gateway forwards to another pod; the gateway's line for the
		// hop it received also describes the connection it made upstream.
		if !d.recvPod.Gateway || d.recv == nil || d.recv.UpstreamHost == "" {
			break
		}
		senderPod, sender = d.recvPod, d.recv
		src, dst = d.recv.UpstreamLocalAddress, d.recv.UpstreamHost
		in = d.layers
	}

	if dialled != "" {
		drafts[0].hop.Notes = append(drafts[0].hop.Notes, "dialled "+dialled+", translated to "+dst+" in the client's pod (kube-proxy's DNAT)")
	}
	if b.obs.DialNote != "" {
		drafts[0].hop.Notes = append(drafts[0].hop.Notes, b.obs.DialNote)
	}
	b.applyApp(drafts[len(drafts)-1], call)

	var reasons []string
	for _, d := range drafts {
		h := d.hop
		if d.established {
			h.Layers = d.layers
			if len(h.Layers) == 0 {
				h.Layers = []Layer{{Kind: KindPlaintext}}
			}
		}
		h.Wire = h.Short()
		h.FailureReason = strings.Join(dedupe(d.reasons), "; ")
		reasons = append(reasons, d.reasons...)
		res.Hops = append(res.Hops, h)
		res.Wire = append(res.Wire, h.Wire)
	}
	res.Peer = outcome.PeerNone
	for _, l := range res.Hops[len(res.Hops)-1].Layers {
		if l.PeerVerified && l.Peer != "" {
			res.Peer = l.Peer
			break
		}
	}
	if c := clientTLSClass(call); c != "" {
		reasons = append(reasons, c)
	}
	res.Reason = strings.Join(dedupe(reasons), "; ")
	return res
}

// hop builds one hop sent by senderPod (sender is its proxy's access-log line, when
// it has one) on src→dst, carrying the layers in arriving at the sender.
func (b *builder) hop(senderPod PodInfo, sender *accesslog.Entry, src, dst string, in []Layer) *draft {
	senderIsProxy := senderPod.HasProxy()
	d := &draft{recvPod: b.podAt(dst)}
	h := &d.hop
	h.Src, h.Dst = src, dst

	// The same connection seen from both ends' captures. Without a source
	// address, guess by destination only when a connection may exist that
	// nobody logged the source of: a proxy picked an upstream host (a failed
	// handshake logs no upstream local address) or left no line at all.
	// A client app that got no local address never connected, and a proxy
	// line without an upstream host never chose one.
	var fs, fr *pod.Flow
	guess := senderIsProxy && (sender == nil || sender.UpstreamHost != "")
	if src != "" || guess {
		from := b.idIP[senderPod.ID]
		fs = b.findFlow(senderPod.ID, from, src, dst)
		if fs != nil && src == "" {
			src, h.Src = fs.Src, fs.Src
		}
		fr = b.findFlow(d.recvPod.ID, from, src, dst)
		if fr != nil && src == "" {
			src, h.Src = fr.Src, fr.Src
		}
	}
	if fs != nil {
		h.Sources = append(h.Sources, "capture:"+senderPod.ID)
	}
	if fr != nil {
		h.Sources = append(h.Sources, "capture:"+d.recvPod.ID)
	}
	d.flow = mergeFlows(fs, fr)

	h.From = senderPod.ID
	if h.From == "" {
		h.From = b.name(src)
	}
	h.To = b.name(dst)

	if sender != nil {
		h.Sources = append(h.Sources, "accesslog:"+senderPod.ID)
		d.addFlags(sender.ResponseFlags)
		d.reasons = append(d.reasons, senderReasons(sender)...)
	}
	if d.recvPod.HasProxy() && src != "" {
		d.recv = b.receiverLine(d.recvPod.ID, src)
	}
	h.Decided = b.decided(senderPod, sender, d.recvPod, dst)
	if d.recv != nil {
		h.Sources = append(h.Sources, "accesslog:"+d.recvPod.ID)
		d.addFlags(d.recv.ResponseFlags)
		d.reasons = append(d.reasons, receiverReasons(d.recv)...)
	}

	d.established = d.flow != nil || d.recv != nil ||
		(sender != nil && sender.UpstreamLocalAddress != "") ||
		(!senderIsProxy && src != "")

	// Layers: what arrived at the sender, minus what its proxy terminated,
	// plus what it originated.
	layers := slices.Clone(in)
	if senderIsProxy {
		if sender != nil && sender.DownstreamTLSVersion != "" && len(layers) > 0 {
			layers = layers[1:]
		}
		if originated(sender, d.flow, layers) {
			l := Layer{Kind: KindTLS}
			if sender != nil {
				l.Version = sender.UpstreamTLSVersion
				l.Server = first(sender.UpstreamPeerURISAN, sender.UpstreamPeerSubject)
			}
			layers = append([]Layer{l}, layers...)
		}
	}
	// The capture is the authority on the outer layer.
	if f := d.flow; f != nil {
		switch {
		case f.Kind == KindTLS && len(layers) == 0:
			layers = []Layer{{Kind: KindTLS}}
		case f.Kind != KindTLS && len(layers) > 0:
			h.Notes = append(h.Notes, "capture shows plaintext where TLS was expected from the sender's side; the capture wins")
			layers = nil
		}
		if len(layers) > 0 {
			layers[0].SNI, layers[0].ALPN = f.SNI, slices.Clone(f.ALPN)
			layers[0].Version = first(layers[0].Version, f.ServerVersion, f.TLSVersion)
		}
	}
	// The receiving proxy says whether it terminated TLS and whose
	// certificate it verified.
	if r := d.recv; r != nil && r.DownstreamTLSVersion != "" {
		if len(layers) == 0 {
			if d.flow != nil {
				h.Notes = append(h.Notes, "receiver logged TLS "+r.DownstreamTLSVersion+" but the capture shows plaintext")
			}
			layers = []Layer{{Kind: KindTLS, SNI: r.RequestedServerName}}
		}
		o := &layers[0]
		o.TerminatedBy = ByProxy
		o.Version = r.DownstreamTLSVersion
		o.Peer = first(r.DownstreamPeerURISAN, r.DownstreamPeerSubject)
		o.PeerVerified = o.Peer != ""
	}
	d.layers = layers
	return d
}

// originated tells whether a proxy opened a TLS session of its own on this
// hop: it logged an upstream TLS version, or the capture shows a ClientHello
// that is not the one arriving from downstream (a failed handshake logs no
// version, but the ClientHello is still on the wire).
func originated(sender *accesslog.Entry, f *pod.Flow, layers []Layer) bool {
	if sender != nil && sender.UpstreamTLSVersion != "" {
		return true
	}
	if f == nil || f.Kind != KindTLS {
		return false
	}
	if len(layers) == 0 {
		return true
	}
	return f.SNI != layers[0].SNI
}

// applyApp folds the echo app's report into the last hop: the TLS it
// terminated itself and the XFCC header its sidecar added.
func (b *builder) applyApp(d *draft, call *pod.CallResult) {
	rep := call.Report
	if rep == nil || rep.Workload == "" || rep.Workload != d.recvPod.ID {
		return
	}
	d.established = true
	d.hop.Sources = append(d.hop.Sources, "app:"+rep.Workload)

	// A sidecar sets X-Forwarded-Client-Cert when it terminated mTLS; the
	// last element is its own hop (Istio's sidecar inbound HCM uses
	// APPEND_FORWARD with URI, DNS and subject: istio/istio
	// pilot/pkg/networking/core/listener_inbound.go, buildSidecarInboundHTTPOpts).
	// Without a sidecar the header is whatever the client sent: no evidence.
	if d.recvPod.Sidecar {
		if uri := xfccURI(rep.Headers); uri != "" {
			if len(d.layers) == 0 {
				d.layers = []Layer{{Kind: KindTLS}}
			}
			o := &d.layers[0]
			switch {
			case o.Peer == "":
				o.Peer, o.PeerVerified, o.TerminatedBy = uri, true, ByProxy
			case o.Peer != uri:
				d.hop.Notes = append(d.hop.Notes, "XFCC URI "+uri+" differs from the access log's peer "+o.Peer)
			}
		}
	}

	if t := rep.TLS; t != nil {
		// The app terminated the first layer its proxy did not.
		i := 0
		if len(d.layers) > 0 && d.layers[0].TerminatedBy == ByProxy {
			i = 1
		}
		if i >= len(d.layers) {
			d.layers = append(d.layers, Layer{Kind: KindTLS})
			i = len(d.layers) - 1
		}
		l := &d.layers[i]
		l.TerminatedBy = ByApp
		l.Version = first(t.Version, l.Version)
		l.SNI = first(l.SNI, t.SNI)
		if len(l.ALPN) == 0 && t.ALPN != "" {
			l.ALPN = []string{t.ALPN}
		}
		l.Peer = first(firstOf(t.PeerURIs), t.PeerSubject)
		l.PeerVerified = l.Peer != ""
	}
}

// clientPod resolves the calling pod.
func (b *builder) clientPod(call *pod.CallResult) PodInfo {
	id := b.obs.Client
	if id == "" && b.obs.Check != nil {
		id = b.obs.Check.From
		if !strings.Contains(id, "/") {
			ns := b.obs.Check.Namespace
			if ns == "" {
				ns = "default"
			}
			if _, ok := b.idIP[ns+"/"+id]; ok {
				id = ns + "/" + id
			} else {
				// Unique by name in any namespace.
				var found []string
				for pid := range b.idIP {
					if strings.HasSuffix(pid, "/"+id) {
						found = append(found, pid)
					}
				}
				if len(found) == 1 {
					id = found[0]
				}
			}
		}
	}
	if a, ok := b.idIP[id]; ok {
		return b.ipPod[a]
	}
	if p := b.podAt(call.LocalAddr); p.ID != "" {
		return p
	}
	return PodInfo{ID: id}
}

// clientLayers is the TLS the client app itself speaks (https and tls URLs).
func (b *builder) clientLayers(call *pod.CallResult) []Layer {
	if b.obs.Check == nil {
		return nil
	}
	u, err := url.Parse(b.obs.Check.To)
	if err != nil || (u.Scheme != "https" && u.Scheme != "tls") {
		return nil
	}
	l := Layer{Kind: KindTLS, SNI: u.Hostname()}
	if t := b.obs.Check.TLS; t != nil && t.SNI != nil {
		l.SNI = *t.SNI
	}
	if t := call.TLS; t != nil {
		l.Version, l.SNI = t.Version, t.SNI
		if t.ALPN != "" {
			l.ALPN = []string{t.ALPN}
		}
		l.Server = first(firstOf(t.PeerURIs), firstOf(t.PeerDNS), t.PeerSubject)
	}
	return []Layer{l}
}

// clientOutbound is the client sidecar's outbound line for the app's connection.
func (b *builder) clientOutbound(id string, call *pod.CallResult) *accesslog.Entry {
	lines := b.obs.AccessLogs[id]
	isOut := func(e *accesslog.Entry) bool { return e.Direction == "" || e.Direction == accesslog.DirectionOutbound }
	if call.LocalAddr != "" {
		if e := latest(lines, func(e *accesslog.Entry) bool { return isOut(e) && e.DownstreamRemoteAddress == call.LocalAddr }); e != nil {
			return e
		}
	}
	if call.RemoteAddr != "" {
		return latest(lines, func(e *accesslog.Entry) bool { return isOut(e) && e.DownstreamLocalAddress == call.RemoteAddr })
	}
	return nil
}

// receiverLine is a proxy's line for a connection it accepted from src.
func (b *builder) receiverLine(id, src string) *accesslog.Entry {
	return latest(b.obs.AccessLogs[id], func(e *accesslog.Entry) bool {
		return e.Direction != accesslog.DirectionOutbound && e.DownstreamRemoteAddress == src
	})
}

// latest is the newest line that matches, preferring a line that closes
// the connection or request over the early line written on connect, which
// lacks the response flags and termination details.
func latest(lines []accesslog.Entry, match func(*accesslog.Entry) bool) *accesslog.Entry {
	var early *accesslog.Entry
	for i := len(lines) - 1; i >= 0; i-- {
		e := &lines[i]
		if !match(e) {
			continue
		}
		if e.Event != accesslog.EventTCPConnected {
			return e
		}
		if early == nil {
			early = e
		}
	}
	return early
}

// findFlow finds the connection src→dst in a pod's capture. With src
// unknown it takes the latest flow from the sender's IP to dst (seen at or
// after Observations.Since).
func (b *builder) findFlow(id string, from netip.Addr, src, dst string) *pod.Flow {
	flows := b.obs.Flows[id]
	if dst == "" {
		return nil
	}
	if src != "" {
		for i := len(flows) - 1; i >= 0; i-- {
			if f := &flows[i]; f.Src == src && f.Dst == dst {
				return f
			}
		}
		return nil
	}
	if !from.IsValid() {
		return nil
	}
	since := int64(0)
	if !b.obs.Since.IsZero() {
		since = b.obs.Since.UnixMilli()
	}
	for i := len(flows) - 1; i >= 0; i-- {
		if f := &flows[i]; f.Dst == dst && addrOf(f.Src) == from && f.TimeUnixMS >= since {
			return f
		}
	}
	return nil
}

// flowFrom is the connection a pod opened from src, in its own capture.
func (b *builder) flowFrom(id, src string) *pod.Flow {
	flows := b.obs.Flows[id]
	for i := len(flows) - 1; i >= 0; i-- {
		if flows[i].Src == src {
			return &flows[i]
		}
	}
	return nil
}

func (b *builder) podAt(hostport string) PodInfo {
	a := addrOf(hostport)
	if !a.IsValid() {
		return PodInfo{}
	}
	return b.ipPod[a]
}

func (b *builder) name(hostport string) string {
	if p := b.podAt(hostport); p.ID != "" {
		return p.ID
	}
	return hostport
}

// dialTarget is the host:port the check dials, for a hop that has no address at all.
func (b *builder) dialTarget() string {
	if b.obs.Dial != "" {
		return b.obs.Dial
	}
	c := b.obs.Check
	if c == nil {
		return ""
	}
	u, err := url.Parse(c.To)
	if err != nil {
		return c.To
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := u.Hostname()
	if c.Via != "" {
		host = c.Via
	}
	return host + ":" + port
}

func (d *draft) addFlags(f string) {
	if f == "" {
		return
	}
	if d.hop.Flags == "" {
		d.hop.Flags = f
	} else if !strings.Contains(d.hop.Flags, f) {
		d.hop.Flags += "," + f
	}
}

// senderReasons are the failure facts a proxy logged about its upstream side.
func senderReasons(e *accesslog.Entry) []string {
	return nonEmpty(e.ResponseFlags, e.UpstreamTransportFailureReason, e.ConnectionTerminationDetails, details(e))
}

// receiverReasons are the failure facts a proxy logged about the connection it accepted.
func receiverReasons(e *accesslog.Entry) []string {
	downFail := e.DownstreamTransportFailureReason
	// tls_inspector records its failed parse of a plaintext first flight as
	// a transport failure; on a plaintext chain that served the connection
	// it is noise, not a reason.
	if e.FilterChainName != "" && e.DownstreamTLSVersion == "" && strings.Contains(downFail, "WRONG_VERSION_NUMBER") {
		downFail = ""
	}
	out := nonEmpty(e.ResponseFlags, downFail, e.ConnectionTerminationDetails, details(e))
	// A listener-level line (no filter chain, so no cluster and no request)
	// is how Envoy reports a connection no filter chain matched; it also
	// sets the NR flag (Envoy docs, access log "NR": no matching filter
	// chain for a downstream connection).
	if e.FilterChainName == "" && e.UpstreamCluster == "" && e.UpstreamHost == "" && e.Method == "" {
		out = append(out, "filter_chain_not_found")
	}
	return out
}

// details keeps response_code_details when it explains a failure.
func details(e *accesslog.Entry) string {
	if e.ResponseCodeDetails == "via_upstream" {
		return ""
	}
	return e.ResponseCodeDetails
}

// clientTLSClass names the client's own TLS failure, when it had one.
func clientTLSClass(call *pod.CallResult) string {
	if call.Result != outcome.TLSError || call.Error == "" {
		return ""
	}
	msg := call.Error
	classes := []struct{ sub, class string }{
		{"certificate signed by unknown authority", "unknown authority"},
		{"certificate is valid for", "server name mismatch"},
		{"certificate is not valid for any names", "server name mismatch"},
		{"certificate has expired", "certificate expired"},
		{"first record does not look like a TLS handshake", "not TLS"},
		{"server gave HTTP response", "not TLS"},
	}
	for _, c := range classes {
		if strings.Contains(msg, c.sub) {
			return "client tls: " + c.class
		}
	}
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		return "client tls: remote error: " + msg[i+len("remote error: tls: "):]
	}
	switch {
	case strings.HasSuffix(msg, "EOF"), strings.Contains(msg, "connection reset"):
		return "client tls: closed during handshake"
	}
	return "client tls: " + msg
}

func xfccURI(h map[string][]string) string {
	for k, vs := range h {
		if !strings.EqualFold(k, "X-Forwarded-Client-Cert") || len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		// Elements are comma-separated, the newest last; fields are ;-separated
		// key=value (Envoy docs, x-forwarded-client-cert).
		elems := strings.Split(v, ",")
		for _, kv := range strings.Split(elems[len(elems)-1], ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if ok && strings.EqualFold(k, "URI") {
				return strings.Trim(val, `"`)
			}
		}
	}
	return ""
}

func mergeFlows(a, b *pod.Flow) *pod.Flow {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	m := *a
	m.ServerVersion = first(m.ServerVersion, b.ServerVersion)
	m.TLSVersion = first(m.TLSVersion, b.TLSVersion)
	m.SNI = first(m.SNI, b.SNI)
	if len(m.ALPN) == 0 {
		m.ALPN = b.ALPN
	}
	return &m
}

func addrOf(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(hostport); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func short(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// decided looks up what translation recorded for this hop: the sending
// proxy's cluster (DestinationRule, VirtualService route) and the
// receiver's listener port (a sidecar's PeerAuthentication, a gateway's
// server). nil when neither end has a proxy.
func (b *builder) decided(senderPod PodInfo, sender *accesslog.Entry, recvPod PodInfo, dst string) *mesh.Decision {
	var d mesh.Decision
	if sender != nil && senderPod.HasProxy() && sender.UpstreamCluster != "" {
		d = d.Merge(b.obs.Decisions[senderPod.ID][sender.UpstreamCluster])
	}
	if recvPod.HasProxy() {
		var port uint32
		if _, p, err := net.SplitHostPort(dst); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				port = uint32(n)
			}
		}
		decs := b.obs.Decisions[recvPod.ID]
		if recvPod.Gateway {
			d = d.Merge(mesh.Decision{Gateway: decs[mesh.GatewayDecisionKey(port)].Gateway})
		} else {
			pa, ok := decs[mesh.InboundDecisionKey(port)]
			if !ok {
				pa = decs[mesh.InboundDecisionKey(0)]
			}
			d = d.Merge(mesh.Decision{PeerAuthentication: pa.PeerAuthentication})
		}
	}
	if d.IsZero() {
		return nil
	}
	return &d
}
