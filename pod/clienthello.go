package pod

import (
	"errors"
	"fmt"
)

// ClientHello is what the wire tells about a TLS client's first flight.
type ClientHello struct {
	LegacyVersion uint16   // client_version field (0x0303 for TLS 1.2 and 1.3)
	Versions      []uint16 // supported_versions extension, GREASE removed
	SNI           string   // server_name (host_name), "" when absent
	ALPN          []string // application_layer_protocol_negotiation
}

// MaxVersion is the highest version offered: supported_versions when sent
// (RFC 8446 §4.2.1), else the legacy field.
func (ch *ClientHello) MaxVersion() uint16 {
	v := uint16(0)
	for _, x := range ch.Versions {
		if x > v && x <= 0x0304 {
			v = x
		}
	}
	if v == 0 {
		v = ch.LegacyVersion
	}
	return v
}

// errIncomplete: the bytes so far are a valid prefix; wait for more.
var errIncomplete = errors.New("incomplete TLS handshake message")

const (
	recordHandshake   = 0x16
	maxHandshakeBytes = 1 << 16 // a ClientHello is far smaller; bounds memory
)

// handshakeMessage reassembles the first handshake message from the TLS
// records at the start of b (it may span records). It returns the message
// type and body, errIncomplete if b ends too soon, or an error if b is not
// TLS handshake traffic.
func handshakeMessage(b []byte) (typ byte, body []byte, err error) {
	var msg []byte
	for {
		if len(b) < 5 {
			break
		}
		if b[0] != recordHandshake {
			if len(msg) == 0 {
				return 0, nil, fmt.Errorf("not a TLS handshake record (content type %d)", b[0])
			}
			return 0, nil, errors.New("handshake message interrupted by another record type")
		}
		if b[1] != 3 {
			return 0, nil, fmt.Errorf("not TLS: record version %d.%d", b[1], b[2])
		}
		n := int(b[3])<<8 | int(b[4])
		if n == 0 || n > 1<<14+2048 {
			return 0, nil, fmt.Errorf("bad TLS record length %d", n)
		}
		if len(b) < 5+n {
			msg = append(msg, b[5:]...)
			break
		}
		msg = append(msg, b[5:5+n]...)
		b = b[5+n:]
		if len(msg) >= 4 && len(msg) >= 4+msgLen(msg) {
			break
		}
	}
	if len(msg) < 4 {
		return 0, nil, errIncomplete
	}
	l := msgLen(msg)
	if l > maxHandshakeBytes {
		return 0, nil, fmt.Errorf("handshake message of %d bytes is too long", l)
	}
	if len(msg) < 4+l {
		return 0, nil, errIncomplete
	}
	return msg[0], msg[4 : 4+l], nil
}

func msgLen(m []byte) int { return int(m[1])<<16 | int(m[2])<<8 | int(m[3]) }

// reader is a bounds-checked cursor: every read fails once data runs out.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *reader) u16() int { return r.u8()<<8 | r.u8() }

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// vec reads a length-prefixed vector (prefix of lenBytes bytes).
func (r *reader) vec(lenBytes int) *reader {
	n := 0
	for range lenBytes {
		n = n<<8 | r.u8()
	}
	return &reader{b: r.bytes(n), bad: r.bad}
}

// ParseClientHello parses the ClientHello at the start of b, which holds the
// client's first bytes on a connection (TLS records). It returns errIncomplete
// (check with IsIncomplete) while more bytes are needed.
func ParseClientHello(b []byte) (*ClientHello, error) {
	typ, body, err := handshakeMessage(b)
	if err != nil {
		return nil, err
	}
	if typ != 1 {
		return nil, fmt.Errorf("first handshake message is type %d, not ClientHello", typ)
	}
	r := &reader{b: body}
	ch := &ClientHello{LegacyVersion: uint16(r.u16())}
	r.bytes(32) // random
	r.vec(1)    // legacy_session_id
	r.vec(2)    // cipher_suites
	r.vec(1)    // legacy_compression_methods
	if r.bad {
		return nil, errors.New("truncated ClientHello")
	}
	if len(r.b) == 0 {
		return ch, nil // no extensions (old clients)
	}
	exts := r.vec(2)
	for len(exts.b) > 0 && !exts.bad {
		et := exts.u16()
		ed := exts.vec(2)
		switch et {
		case 0: // server_name (RFC 6066 §3)
			list := ed.vec(2)
			for len(list.b) > 0 && !list.bad {
				nt := list.u8()
				name := list.vec(2)
				if nt == 0 && ch.SNI == "" {
					ch.SNI = string(name.b)
				}
			}
			ed.bad = ed.bad || list.bad
		case 16: // ALPN (RFC 7301 §3.1)
			list := ed.vec(2)
			for len(list.b) > 0 && !list.bad {
				p := list.vec(1)
				if !p.bad {
					ch.ALPN = append(ch.ALPN, string(p.b))
				}
				list.bad = list.bad || p.bad
			}
			ed.bad = ed.bad || list.bad
		case 43: // supported_versions (RFC 8446 §4.2.1)
			list := ed.vec(1)
			for len(list.b) > 0 && !list.bad {
				v := uint16(list.u16())
				if v&0x0f0f != 0x0a0a { // skip GREASE (RFC 8701)
					ch.Versions = append(ch.Versions, v)
				}
			}
			ed.bad = ed.bad || list.bad
		}
		if ed.bad {
			return nil, fmt.Errorf("malformed ClientHello extension %d", et)
		}
	}
	if exts.bad || r.bad {
		return nil, errors.New("malformed ClientHello extensions")
	}
	return ch, nil
}

// ParseServerHello returns the version a ServerHello selects: the
// supported_versions extension when present (TLS 1.3), else legacy_version.
func ParseServerHello(b []byte) (uint16, error) {
	typ, body, err := handshakeMessage(b)
	if err != nil {
		return 0, err
	}
	if typ != 2 {
		return 0, fmt.Errorf("first server handshake message is type %d, not ServerHello", typ)
	}
	r := &reader{b: body}
	v := uint16(r.u16())
	r.bytes(32)
	r.vec(1) // session id
	r.u16()  // cipher suite
	r.u8()   // compression
	if r.bad {
		return 0, errors.New("truncated ServerHello")
	}
	if len(r.b) == 0 {
		return v, nil
	}
	exts := r.vec(2)
	for len(exts.b) > 0 && !exts.bad {
		et := exts.u16()
		ed := exts.vec(2)
		if et == 43 && !ed.bad {
			if sv := ed.u16(); !ed.bad {
				v = uint16(sv)
			}
		}
	}
	if exts.bad {
		return 0, errors.New("malformed ServerHello extensions")
	}
	return v, nil
}

// IsIncomplete reports whether a parse error only means "need more bytes".
func IsIncomplete(err error) bool { return errors.Is(err, errIncomplete) }
