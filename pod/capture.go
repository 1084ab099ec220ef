package pod

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// Capture bounds.
const (
	pcapSnaplen   = 512     // bytes of each packet kept for /pcap
	pcapMaxBytes  = 8 << 20 // packet bytes kept for /pcap, oldest dropped
	captureBuffer = 256 << 10
	syncTimeout   = 5 * time.Second
)

// Capture reads every frame on one interface through an AF_PACKET socket
// (pure Go, needs CAP_NET_RAW), feeds TCP segments to a Tracker and keeps a
// bounded pcap of what it saw.
//
// It opens its own socket instead of pcapgo.EthernetHandle because /flows
// must first drain what the kernel already queued (Sync): a check reads
// /flows right after its call, and the handle offers no way to know that
// the queue is empty.
type Capture struct {
	iface   string
	f       *os.File
	rc      syscall.RawConn
	tracker *Tracker
	buf     []byte

	mu       sync.Mutex
	cond     *sync.Cond
	reqGen   uint64 // Sync requests made
	doneGen  uint64 // Sync requests served
	err      error  // read loop ended
	pkts     []pcapPacket
	pktBytes int
}

type pcapPacket struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// StartCapture opens iface and starts reading.
func StartCapture(iface string) (*Capture, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture interface %q: %w", iface, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w (needs CAP_NET_RAW, which Docker grants by default)", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", iface, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+iface)
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	c := &Capture{iface: iface, f: f, rc: rc, tracker: NewTracker(), buf: make([]byte, captureBuffer)}
	c.cond = sync.NewCond(&c.mu)
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// loop reads frames until Close. A Sync sets a past read deadline, which
// wakes the blocked read; the loop then drains the queue without blocking
// and reports the requests it has served.
func (c *Capture) loop() {
	for {
		var n int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), c.buf, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			_ = c.f.SetReadDeadline(time.Time{})
			c.mu.Lock()
			gen := c.reqGen
			c.mu.Unlock()
			c.drain()
			c.mu.Lock()
			c.doneGen = gen
			c.cond.Broadcast()
			c.mu.Unlock()
			continue
		case err != nil:
			c.stop(err)
			return
		case rerr != nil:
			c.stop(fmt.Errorf("read packet on %s: %w", c.iface, rerr))
			return
		}
		c.frame(time.Now(), c.buf[:n])
	}
}

// drain handles every frame already queued, without blocking.
func (c *Capture) drain() {
	_ = c.rc.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), c.buf, unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			c.frame(time.Now(), c.buf[:n])
		}
	})
}

func (c *Capture) stop(err error) {
	c.mu.Lock()
	c.err = err
	c.cond.Broadcast()
	c.mu.Unlock()
}

// frame records one Ethernet frame.
func (c *Capture) frame(ts time.Time, b []byte) {
	keep := b
	if len(keep) > pcapSnaplen {
		keep = keep[:pcapSnaplen]
	}
	p := pcapPacket{
		ci:   gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(keep), Length: len(b)},
		data: append([]byte(nil), keep...),
	}
	c.mu.Lock()
	c.pkts = append(c.pkts, p)
	c.pktBytes += len(p.data)
	drop := 0
	for c.pktBytes > pcapMaxBytes && drop < len(c.pkts) {
		c.pktBytes -= len(c.pkts[drop].data)
		drop++
	}
	if drop > 0 {
		c.pkts = append(c.pkts[:0:0], c.pkts[drop:]...)
	}
	c.mu.Unlock()
	if s, ok := decodeTCP(b); ok {
		s.Time = ts
		c.tracker.Add(s)
	}
}

// decodeTCP extracts a TCP segment from an Ethernet frame (IPv4/IPv6, one
// optional VLAN tag), bounds-checked.
func decodeTCP(b []byte) (Segment, bool) {
	var s Segment
	if len(b) < 14 {
		return s, false
	}
	et := binary.BigEndian.Uint16(b[12:14])
	b = b[14:]
	if et == 0x8100 && len(b) >= 4 {
		et = binary.BigEndian.Uint16(b[2:4])
		b = b[4:]
	}
	var src, dst netip.Addr
	switch et {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return s, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if b[9] != 6 || ihl < 20 || total < ihl || len(b) < ihl {
			return s, false
		}
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return s, false // a non-first fragment has no TCP header
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		if total <= len(b) && total != 0 {
			b = b[:total] // drop Ethernet padding
		}
		b = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[6] != 6 { // no extension headers in our pods
			return s, false
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40:]
		if plen <= len(b) && plen != 0 {
			b = b[:plen]
		}
	default:
		return s, false
	}
	if len(b) < 20 {
		return s, false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || len(b) < off {
		return s, false
	}
	flags := b[13]
	s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
	s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
	s.Seq = binary.BigEndian.Uint32(b[4:8])
	s.FIN = flags&0x01 != 0
	s.SYN = flags&0x02 != 0
	s.RST = flags&0x04 != 0
	s.ACK = flags&0x10 != 0
	s.Payload = b[off:]
	return s, true
}

// Sync returns once every frame queued before the call has been handled,
// so /flows reflects all traffic that happened before it was asked.
func (c *Capture) Sync() error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.reqGen++
	gen := c.reqGen
	c.mu.Unlock()
	if err := c.f.SetReadDeadline(time.Now()); err != nil {
		return fmt.Errorf("capture sync: %w", err)
	}
	timer := time.AfterFunc(syncTimeout, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(syncTimeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.doneGen < gen && c.err == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("capture on %s did not drain its queue within %v", c.iface, syncTimeout)
		}
		c.cond.Wait()
	}
	return c.err
}

// Flows syncs, then returns flows with Seq > since.
func (c *Capture) Flows(since uint64) ([]Flow, error) {
	if err := c.Sync(); err != nil {
		return nil, err
	}
	return c.tracker.Flows(since), nil
}

// WritePcap writes the kept packets as a pcap file (Ethernet link type).
func (c *Capture) WritePcap(w io.Writer) error {
	_ = c.Sync()
	c.mu.Lock()
	pkts := append([]pcapPacket(nil), c.pkts...)
	c.mu.Unlock()
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(pcapSnaplen, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for _, p := range pkts {
		if err := pw.WritePacket(p.ci, p.data); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the capture.
func (c *Capture) Close() error { return c.f.Close() }
