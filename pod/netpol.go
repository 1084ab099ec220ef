package pod

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NetPolicyTable is the nftables table (family ip) that ApplyNetPolicy
// owns, apart from the redirection's table so each is replaced alone.
const NetPolicyTable = "meshtls-netpol"

// NetPolicy is what Kubernetes NetworkPolicies allow one pod, as the
// harness computed it (mesh.Mesh.NetPolicy): per direction, nil when no
// policy isolates the pod that way (everything is allowed), otherwise the
// connections allowed (none: deny all).
type NetPolicy struct {
	Ingress *NetRules `json:"ingress,omitempty"`
	Egress  *NetRules `json:"egress,omitempty"`
}

// NetRules are the connections an isolated direction allows.
type NetRules struct {
	Allow []NetAllow `json:"allow"`
}

// NetAllow allows new connections with a peer (the source of an inbound
// connection, the destination of an outbound one, after the pod's own
// service DNAT) inside Peer and outside every Except, to a destination
// port of Protocol between Port and EndPort.
type NetAllow struct {
	Peer     netip.Prefix   `json:"peer"`               // 0.0.0.0/0: any address
	Except   []netip.Prefix `json:"except,omitempty"`   // ipBlock.except
	Protocol string         `json:"protocol,omitempty"` // TCP, UDP, SCTP; "": any protocol, any port
	Port     uint16         `json:"port,omitempty"`     // 0: every port of Protocol
	EndPort  uint16         `json:"endPort,omitempty"`  // 0: Port alone
}

// Isolated reports whether some direction is isolated.
func (p NetPolicy) Isolated() bool { return p.Ingress != nil || p.Egress != nil }

// LoadNetPolicy reads a NetPolicy file the harness wrote.
func LoadNetPolicy(path string) (NetPolicy, error) {
	var p NetPolicy
	err := readJSON(path, &p, "network policy")
	return p, err
}

// protocols are NetworkPolicy's protocols (spec.ingress[].ports[].protocol).
var protocols = map[string]byte{"TCP": unix.IPPROTO_TCP, "UDP": unix.IPPROTO_UDP, "SCTP": unix.IPPROTO_SCTP}

// ApplyNetPolicy programs p in the current network namespace, replacing
// what an earlier call programmed (one netlink transaction); a policy that
// isolates nothing removes the table. Kubernetes leaves enforcement to the
// network plugin; this does what plugins do (Calico, Cilium, kube-router),
// in the pod's own namespace instead of on the node:
//
//	prerouting, before the DNAT (priority mangle): from Iface, replies and
//	        related packets of allowed connections pass (conntrack), a new
//	        connection passes when an ingress rule allows its source and
//	        original destination port, else it is dropped;
//	postrouting (priority filter): to Iface, the same for egress, after
//	        the pod's service DNAT, so rules see the endpoint chosen, not
//	        the cluster IP (Kubernetes: policy applies to pods, not Services).
//
// Traffic on lo (the app and its sidecar, the redirection) is never
// filtered. A drop is silent, so a denied connection times out, as with
// most network plugins. Needs CAP_NET_ADMIN.
func ApplyNetPolicy(p NetPolicy, iface string) error {
	if iface == "" {
		iface = "eth0"
	}
	if len(iface) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q is longer than %d bytes", iface, unix.IFNAMSIZ-1)
	}
	for _, r := range []*NetRules{p.Ingress, p.Egress} {
		if r == nil {
			continue
		}
		for _, a := range r.Allow {
			if err := a.check(); err != nil {
				return err
			}
		}
	}
	c, t, err := replaceTable(NetPolicyTable)
	if err != nil {
		return err
	}
	if p.Isolated() {
		t = c.AddTable(t)
		if p.Ingress != nil {
			ch := c.AddChain(&nftables.Chain{Name: "ingress", Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle})
			for _, r := range netPolicyChain(*p.Ingress, iface, true) {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
			}
		}
		if p.Egress != nil {
			ch := c.AddChain(&nftables.Chain{Name: "egress", Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityFilter})
			for _, r := range netPolicyChain(*p.Egress, iface, false) {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
			}
		}
	}
	if err := c.Flush(); err != nil {
		return netAdminHint("program nftables table ip "+NetPolicyTable, err)
	}
	return nil
}

func (a NetAllow) check() error {
	if !a.Peer.IsValid() || !a.Peer.Addr().Is4() {
		return fmt.Errorf("network policy: peer %v is not an IPv4 range", a.Peer)
	}
	if _, ok := protocols[a.Protocol]; !ok && a.Protocol != "" {
		return fmt.Errorf("network policy: protocol %q (want TCP, UDP or SCTP)", a.Protocol)
	}
	if a.EndPort != 0 && a.EndPort < a.Port {
		return fmt.Errorf("network policy: endPort %d below port %d", a.EndPort, a.Port)
	}
	return nil
}

// netPolicyChain is one direction's rules, in order: other interfaces and
// established or related packets accept, each allowed connection accepts,
// the rest drop. ingress picks the peer from the source address and the
// port from the connection's original destination (before the
// redirection's DNAT); egress the peer from the destination address
// after the service DNAT.
func netPolicyChain(r NetRules, iface string, ingress bool) [][]expr.Any {
	accept := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	ifKey, addrOff := expr.MetaKeyOIFNAME, uint32(16) // daddr
	if ingress {
		ifKey, addrOff = expr.MetaKeyIIFNAME, 12 // saddr
	}
	rules := [][]expr.Any{
		// meta iifname/oifname != IFACE accept
		{&expr.Meta{Key: ifKey, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(iface)}, accept[0]},
		// ct state established,related accept
		{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
				Xor:  binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			accept[0],
		},
	}
	for _, a := range r.Allow {
		var e []expr.Any
		e = append(e, addrIn(addrOff, a.Peer, expr.CmpOpEq)...)
		for _, x := range a.Except {
			e = append(e, addrIn(addrOff, x, expr.CmpOpNeq)...)
		}
		if a.Protocol != "" {
			e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protocols[a.Protocol]}})
			if a.Port != 0 {
				// th dport: the original port on ingress (this chain runs
				// before the redirection's DNAT), the endpoint's on egress.
				e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
				end := a.EndPort
				if end == 0 {
					end = a.Port
				}
				e = append(e,
					&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(a.Port)},
					&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(end)})
			}
		}
		rules = append(rules, append(e, accept...))
	}
	return append(rules, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
}

// addrIn matches the IPv4 address at off (12 source, 16 destination)
// inside p (op Eq) or outside it (op Neq).
func addrIn(off uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	p = p.Masked()
	a := p.Addr().As4()
	mask := net.CIDRMask(p.Bits(), 32)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: a[:]},
	}
}
