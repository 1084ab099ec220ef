package pod

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// RedirectTable is the nftables table (family ip) that Redirect owns.
const RedirectTable = "meshtls"

// RedirectConfig is what istio-init is told: the proxy's identity and
// ports. With both ports zero there is no proxy to capture for (a plain pod)
// and only the service DNAT is programmed.
type RedirectConfig struct {
	UID, GID     uint32 // proxy's uid/gid, never redirected (Istio: 1337)
	OutboundPort uint16 // Istio: 15001
	InboundPort  uint16 // Istio: 15006
	Iface        string // inbound redirection applies to TCP arriving here (default eth0)
	// ServiceDNAT stands in for kube-proxy: a cluster IP's port goes to one
	// of the Service's endpoints, and a headless Service's port that
	// differs from its targetPort is translated. In a pod without sidecar
	// it applies to the app; with capture, to what the capture lets out
	// untouched (the proxy's own connections, e.g. PassthroughCluster to a
	// cluster IP), as kube-proxy's rules on the node see the pod's traffic
	// after the pod's own.
	ServiceDNAT []PortMap
	// Istio's capture annotations (traffic.sidecar.istio.io/...), as
	// istio-init's -b, -d, -o, -i, -x; the zero values capture everything.
	InboundPorts    []uint16       // includeInboundPorts: only these (nil: all)
	NoInbound       bool           // includeInboundPorts "": none
	ExcludeInbound  []uint16       // excludeInboundPorts, when all are captured
	ExcludeOutbound []uint16       // excludeOutboundPorts
	OutboundRanges  []netip.Prefix // includeOutboundIPRanges: only these (nil: all)
	NoOutbound      bool           // includeOutboundIPRanges "": none
	ExcludeRanges   []netip.Prefix // excludeOutboundIPRanges
}

// PortMap sends TCP for Addr:Port to one of Targets, chosen at random for
// each connection as kube-proxy does.
type PortMap struct {
	Addr    netip.Addr
	Port    uint16
	Targets []netip.AddrPort
}

// ParsePortMap reads "ADDR:PORT=TARGETPORT" (the same address, another
// port) or "ADDR:PORT=IP:PORT,IP:PORT..." (endpoints of a cluster IP).
func ParsePortMap(s string) (PortMap, error) {
	lhs, rhs, ok := strings.Cut(s, "=")
	ap, err := netip.ParseAddrPort(lhs)
	if !ok || err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return PortMap{}, fmt.Errorf("--dnat %q: want IPv4:PORT=TARGETPORT or IPv4:PORT=IPv4:PORT,... (ports 1..65535)", s)
	}
	m := PortMap{Addr: ap.Addr(), Port: ap.Port()}
	if tp, err := strconv.ParseUint(rhs, 10, 16); err == nil && tp != 0 {
		m.Targets = []netip.AddrPort{netip.AddrPortFrom(ap.Addr(), uint16(tp))}
		return m, nil
	}
	for _, f := range strings.Split(rhs, ",") {
		t, err := netip.ParseAddrPort(f)
		if err != nil || !t.Addr().Is4() || t.Port() == 0 {
			return PortMap{}, fmt.Errorf("--dnat %q: target %q: want TARGETPORT or IPv4:PORT (ports 1..65535)", s, f)
		}
		m.Targets = append(m.Targets, t)
	}
	return m, nil
}

// Redirect programs, in the current network namespace, the capture Istio's
// init container sets up with iptables (tools/istio-iptables/pkg/capture/run.go
// in istio/istio; istio-nftables does the same with nftables):
//
//	nat OUTPUT:     skip sockets of the proxy uid and gid (ISTIO_OUTPUT
//	                "-m owner --uid-owner/--gid-owner -j RETURN"), skip
//	                127.0.0.0/8 ("-d 127.0.0.1/32 -j RETURN"), redirect other
//	                TCP to OutboundPort (ISTIO_REDIRECT).
//	nat PREROUTING: TCP arriving on Iface goes to InboundPort (ISTIO_INBOUND
//	                -> ISTIO_IN_REDIRECT).
//
// The capture annotations change both as in run.go: excluded outbound ports
// and ranges return before the redirect, an include list of ranges
// redirects only those (none when ""); inbound, an include list redirects
// only its ports (none when ""), else every port but the excluded ones.
//
// Not reproduced: Istio's exclusion of its own inbound ports (15008, 15020,
// 15021, 15090), IPv6 and DNS capture. It is idempotent: our table is replaced whole, in
// one netlink transaction. Needs CAP_NET_ADMIN.
func Redirect(cfg RedirectConfig) error {
	if cfg.Iface == "" {
		cfg.Iface = "eth0"
	}
	if len(cfg.Iface) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q is longer than %d bytes", cfg.Iface, unix.IFNAMSIZ-1)
	}
	capture := cfg.OutboundPort != 0 || cfg.InboundPort != 0
	if capture && (cfg.OutboundPort == 0 || cfg.InboundPort == 0) {
		return errors.New("outbound and inbound ports must both be set (Istio uses 15001 and 15006)")
	}
	c, t, err := replaceTable(RedirectTable)
	if err != nil {
		return err
	}
	t = c.AddTable(t)
	out := c.AddChain(&nftables.Chain{
		Name: "output", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
	})
	ret := &expr.Verdict{Kind: expr.VerdictReturn}
	add := func(ch *nftables.Chain, e ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	// ip daddr ADDR tcp dport PORT [numgen random mod K == 0] dnat to TARGET.
	// With capture, in a chain after the capture's: a connection the
	// capture redirected has its NAT already and skips it.
	svc := out
	if capture && len(cfg.ServiceDNAT) > 0 {
		svc = c.AddChain(&nftables.Chain{
			Name: "services", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest + 1),
		})
	}
	for _, m := range cfg.ServiceDNAT {
		for _, r := range dnatRules(m) {
			add(svc, r...)
		}
	}
	if !capture {
		if err := c.Flush(); err != nil {
			return netAdminHint("program nftables table ip "+RedirectTable, err)
		}
		return nil
	}
	// The proxy calling its own pod through lo (a service whose endpoint is
	// this pod) goes to the inbound listener; the app calling itself by pod
	// address is not captured (istio-iptables run.go: "-o lo ! -d 127.0.0.1/32
	// -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT", then "-o lo -m owner !
	// --uid-owner 1337 -j RETURN").
	lo := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
	}
	// The proxy's inbound clusters connect to the app from 127.0.0.6
	// (Istio's inbound passthrough bind address): never captured, or the
	// connection would loop back into the inbound listener (istio-nftables
	// capture/run.go: "oifname lo ip saddr 127.0.0.6/32 return", first).
	add(out, cat(lo, saddrIs([]byte{127, 0, 0, 6}), []expr.Any{ret})...)
	notLoopback := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127, 0, 0, 0}},
	}
	uidIs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.UID)},
	}
	add(out, cat(lo, notLoopback, uidIs, isTCP(), redirectTo(cfg.InboundPort))...)
	add(out, cat(lo, notLoopback, []expr.Any{
		&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.UID)},
	}, []expr.Any{ret})...)
	// meta skuid UID return; meta skgid GID return
	add(out, &expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.UID)}, ret)
	add(out, &expr.Meta{Key: expr.MetaKeySKGID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.GID)}, ret)
	// ip daddr 127.0.0.0/8 return
	add(out,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127, 0, 0, 0}}, ret)
	// meta l4proto tcp redirect to :OutboundPort
	pre := c.AddChain(&nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
	})
	// tcp dport P return; ip daddr RANGE return
	for _, p := range cfg.ExcludeOutbound {
		add(out, cat(isTCP(), dportIs(p), []expr.Any{ret})...)
	}
	for _, r := range cfg.ExcludeRanges {
		add(out, cat(daddrIn(r), []expr.Any{ret})...)
	}
	switch {
	case cfg.NoOutbound:
	case cfg.OutboundRanges != nil:
		for _, r := range cfg.OutboundRanges {
			add(out, cat(daddrIn(r), isTCP(), redirectTo(cfg.OutboundPort))...)
		}
	default:
		add(out, append(isTCP(), redirectTo(cfg.OutboundPort)...)...)
	}
	// iifname IFACE meta l4proto tcp [dport P] redirect to :InboundPort
	inIface := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(cfg.Iface)},
	}
	switch {
	case cfg.NoInbound:
	case cfg.InboundPorts != nil:
		for _, p := range cfg.InboundPorts {
			add(pre, cat(inIface, isTCP(), dportIs(p), redirectTo(cfg.InboundPort))...)
		}
	default:
		for _, p := range cfg.ExcludeInbound {
			add(pre, cat(inIface, isTCP(), dportIs(p), []expr.Any{ret})...)
		}
		add(pre, cat(inIface, isTCP(), redirectTo(cfg.InboundPort))...)
	}
	if err := c.Flush(); err != nil {
		return netAdminHint("program nftables table ip "+RedirectTable, err)
	}
	return nil
}

// dnatRules spread connections over m's targets like kube-proxy: rule i
// of n takes the connection with probability 1/(n-i), the last takes the
// rest, so each target gets 1/n (kubernetes pkg/proxy/iptables/proxier.go,
// "-m statistic --mode random --probability"; the nftables proxier does it
// with numgen random).
func dnatRules(m PortMap) [][]expr.Any {
	a := m.Addr.As4()
	match := cat(daddrIs(a[:]), isTCP(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.Port)},
	})
	var rules [][]expr.Any
	for i, t := range m.Targets {
		var pick []expr.Any
		if left := len(m.Targets) - i; left > 1 {
			pick = []expr.Any{
				&expr.Numgen{Register: 1, Modulus: uint32(left), Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			}
		}
		ta := t.Addr().As4()
		rules = append(rules, cat(match, pick, []expr.Any{
			&expr.Immediate{Register: 1, Data: ta[:]},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(t.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}))
	}
	return rules
}

// replaceTable opens a netlink batch whose first message deletes table
// name (family ip) when it exists: what the caller adds replaces it whole,
// in one transaction at Flush.
func replaceTable(name string) (*nftables.Conn, *nftables.Table, error) {
	c, err := nftables.New(nftables.WithSockOptions(roomForBatch))
	if err != nil {
		return nil, nil, netAdminHint("open netlink for nftables", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, nil, netAdminHint("list nftables tables", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: name}
	if slices.ContainsFunc(tables, func(x *nftables.Table) bool { return x.Name == name }) {
		c.DelTable(t)
	}
	return c, t, nil
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func saddrIs(a []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a},
	}
}

func daddrIs(a []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a},
	}
}

// dportIs matches a TCP destination port (after isTCP).
func dportIs(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// daddrIn matches an IPv4 destination inside p.
func daddrIn(p netip.Prefix) []expr.Any {
	p = p.Masked()
	mask := net.CIDRMask(p.Bits(), 32)
	a := p.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

// ParsePorts reads istio-iptables' port lists ("80,8080"), as the init's
// flags and, in package mesh, the capture annotations they come from.
func ParsePorts(s string) ([]uint16, error) {
	return parseList(s, func(f string) (uint16, error) {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%q is not a port (a comma-separated list of 1-65535)", f)
		}
		return uint16(n), nil
	})
}

// ParseRanges reads istio-iptables' IP range lists ("10.0.0.0/8,1.2.3.4"):
// CIDRs, a bare address being one host; IPv4 only, as the run's network.
func ParseRanges(s string) ([]netip.Prefix, error) {
	return parseList(s, func(f string) (netip.Prefix, error) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return p, fmt.Errorf("%q is not an IP range (a comma-separated list of CIDRs)", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !p.Addr().Is4() {
			return p, fmt.Errorf("%q: meshtls's network is IPv4 only", f)
		}
		return p.Masked(), nil
	})
}

// parseList reads a comma-separated list, blanks ignored.
func parseList[T any](s string, one func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := one(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func isTCP() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

func redirectTo(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

// ifname pads a name as the kernel stores it (IFNAMSIZ, NUL-filled).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func netAdminHint(what string, err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w (the init, in the pod's first container, needs CAP_NET_ADMIN)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// batchBuffer is the netlink socket's send and receive buffer for the
// table's one transaction: the whole batch is one send, and the kernel
// acknowledges every message before any acknowledgement is read. A sidecar
// pod's DNAT has a rule per Service port of the mesh: at 100 pods the
// default buffers (212,992 bytes) overflowed now and then (ENOBUFS), at
// 1,000 rules the send failed (EMSGSIZE). 32 MiB holds more than 10,000
// rules; the memory is only taken while a batch is in flight.
const batchBuffer = 32 << 20

// roomForBatch sizes the nftables netlink socket's buffers to batchBuffer,
// past the system's limits (net.core.rmem_max, wmem_max) as the init may:
// it holds CAP_NET_ADMIN.
func roomForBatch(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchBuffer))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sizing the netlink socket's buffers for the nftables batch: %w", serr)
	}
	return nil
}
