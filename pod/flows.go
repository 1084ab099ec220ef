package pod

import (
	"net/netip"
	"sync"
	"time"
)

// Bounds of the flow tracker: memory stays flat however long a pod lives.
const (
	maxFlows        = 10000 // finished first flights kept for /flows
	maxConns        = 20000 // connections being followed
	maxFirstPayload = 1<<14 + 5 + 2048
	previewLen      = 64
)

// Segment is the part of a captured TCP packet the tracker needs.
type Segment struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	SYN, ACK bool
	FIN, RST bool
	Seq      uint32
	Payload  []byte
}

// Tracker turns TCP segments into Flows: one per connection whose SYN it
// saw, describing the initiator's first payload and the server's answer.
type Tracker struct {
	mu    sync.Mutex
	conns map[connID]*conn
	ring  []*Flow // oldest first, at most maxFlows
	seq   uint64
}

type connID struct{ client, server netip.AddrPort }

type conn struct {
	born       time.Time
	flow       *Flow // set once the client's first payload is classified
	cli, srv   stream
	srvStarted bool
}

// stream collects one direction's first payload, in sequence order.
type stream struct {
	next uint32 // next expected sequence number
	buf  []byte
	done bool
}

// add appends an in-order segment; retransmissions and reordering are
// ignored (the first flight rarely needs them, and we never guess).
func (s *stream) add(seq uint32, p []byte) bool {
	if s.done || len(p) == 0 || seq != s.next {
		return false
	}
	s.buf = append(s.buf, p...)
	s.next += uint32(len(p))
	return true
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{conns: map[connID]*conn{}} }

// Add feeds one segment.
func (t *Tracker) Add(s Segment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.SYN && !s.ACK {
		if len(t.conns) >= maxConns {
			t.evictOldest()
		}
		// A repeated SYN (retransmission) restarts the connection's state.
		t.conns[connID{s.Src, s.Dst}] = &conn{born: s.Time, cli: stream{next: s.Seq + 1}}
		return
	}
	if c, ok := t.conns[connID{s.Src, s.Dst}]; ok { // initiator → server
		if c.cli.add(s.Seq, s.Payload) {
			t.clientData(c, connID{s.Src, s.Dst})
		}
	} else if c, ok := t.conns[connID{s.Dst, s.Src}]; ok { // server → initiator
		switch {
		case s.SYN:
			c.srv = stream{next: s.Seq + 1}
			c.srvStarted = true
		case c.srvStarted && c.srv.add(s.Seq, s.Payload):
			t.serverData(c)
			if c.cli.done && c.srv.done {
				delete(t.conns, connID{s.Dst, s.Src}) // both first flights seen
			}
		}
	}
	if s.FIN || s.RST {
		id := connID{s.Src, s.Dst}
		if _, ok := t.conns[id]; !ok {
			id = connID{s.Dst, s.Src}
		}
		delete(t.conns, id)
	}
}

func (t *Tracker) clientData(c *conn, id connID) {
	b := c.cli.buf
	f := &Flow{TimeUnixMS: c.born.UnixMilli(), Src: id.client.String(), Dst: id.server.String()}
	if b[0] == recordHandshake {
		ch, err := ParseClientHello(b)
		if IsIncomplete(err) && len(b) < maxFirstPayload {
			return // wait for the rest of the ClientHello
		}
		if err == nil {
			f.Kind = "tls"
			f.SNI = ch.SNI
			f.ALPN = ch.ALPN
			f.TLSVersion = tlsVersionName(ch.MaxVersion())
		}
	}
	if f.Kind == "" {
		f.Kind = "plaintext"
		f.Preview = preview(b)
	}
	c.cli.done, c.cli.buf = true, nil
	t.seq++
	f.Seq = t.seq
	c.flow = f
	if len(t.ring) >= maxFlows {
		t.ring = append(t.ring[:0:0], t.ring[len(t.ring)-maxFlows+1:]...)
	}
	t.ring = append(t.ring, f)
}

func (t *Tracker) serverData(c *conn) {
	b := c.srv.buf
	if b[0] == recordHandshake {
		v, err := ParseServerHello(b)
		if IsIncomplete(err) && len(b) < maxFirstPayload {
			return
		}
		if err == nil && c.flow != nil {
			c.flow.ServerVersion = tlsVersionName(v)
		}
	}
	c.srv.done, c.srv.buf = true, nil
}

func (t *Tracker) evictOldest() {
	var oldest connID
	var born time.Time
	for id, c := range t.conns {
		if born.IsZero() || c.born.Before(born) {
			oldest, born = id, c.born
		}
	}
	delete(t.conns, oldest)
}

// Flows returns copies of the flows with Seq > since, oldest first.
func (t *Tracker) Flows(since uint64) []Flow {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []Flow{}
	for _, f := range t.ring {
		if f.Seq > since {
			c := *f
			c.ALPN = append([]string(nil), f.ALPN...)
			out = append(out, c)
		}
	}
	return out
}

// preview keeps printable ASCII of the first bytes; others become '.'.
func preview(b []byte) string {
	if len(b) > previewLen {
		b = b[:previewLen]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x20 && c < 0x7f {
			out[i] = c
		} else {
			out[i] = '.'
		}
	}
	return string(out)
}
