package pod

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/nftables"
)

// TestNetPolicyInNetns programs a policy in the namespace TestRedirect
// creates: the table and its two chains appear with one rule per allowed
// connection plus the interface, conntrack and drop rules, once however
// often it is applied; traffic on lo (the pod's own address included) is
// never filtered; a policy that isolates nothing removes the table. The
// filtering itself is shown live (scenarios/testdata/20-networkpolicy.yaml).
func TestNetPolicyInNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		t.Skip("runs inside the namespace TestRedirect creates")
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"link", "add", "np0", "type", "veth", "peer", "name", "np1"},
		{"link", "set", "np0", "up"}, {"link", "set", "np1", "up"}, {"addr", "add", "10.7.7.1/24", "dev", "np0"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	p := NetPolicy{
		Ingress: &NetRules{Allow: []NetAllow{}},
		Egress: &NetRules{Allow: []NetAllow{
			{Peer: netip.MustParsePrefix("10.7.7.0/24"), Except: []netip.Prefix{netip.MustParsePrefix("10.7.7.128/25")}, Protocol: "TCP", Port: 8000, EndPort: 8010},
			{Peer: netip.MustParsePrefix("0.0.0.0/0"), Protocol: "UDP", Port: 53},
		}},
	}
	if err := ApplyNetPolicy(p, "np0"); err != nil {
		t.Fatal(err)
	}
	// Applied twice: replaced, not doubled.
	if err := ApplyNetPolicy(p, "np0"); err != nil {
		t.Fatal(err)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	chains, _ := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	for _, ch := range chains {
		if ch.Table.Name != NetPolicyTable {
			continue
		}
		rs, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		rules[ch.Name] = len(rs)
	}
	// interface, conntrack, allowed..., drop
	if rules["ingress"] != 3 || rules["egress"] != 5 {
		t.Fatalf("rules per chain: %v, want ingress 3, egress 5", rules)
	}
	// A connection on lo is never filtered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatalf("lo is filtered: %v", err)
	}
	conn.Close()
	// An address of the pod's own interface, dialled locally, goes over lo too.
	ln2, err := net.Listen("tcp", "10.7.7.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if conn, err := net.DialTimeout("tcp", ln2.Addr().String(), 2*time.Second); err != nil {
		t.Fatalf("the pod's own address is filtered: %v", err)
	} else {
		conn.Close()
	}
	if err := ApplyNetPolicy(NetPolicy{}, "np0"); err != nil {
		t.Fatal(err)
	}
	tables, _ := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	for _, tb := range tables {
		if tb.Name == NetPolicyTable {
			t.Fatal("a policy that isolates nothing left the table")
		}
	}
}

// Bad entries are refused before anything is programmed.
func TestNetPolicyCheck(t *testing.T) {
	for _, a := range []NetAllow{
		{Peer: netip.MustParsePrefix("2001:db8::/32")},
		{Peer: netip.MustParsePrefix("10.0.0.0/8"), Protocol: "ICMP"},
		{Peer: netip.MustParsePrefix("10.0.0.0/8"), Protocol: "TCP", Port: 90, EndPort: 80},
	} {
		if err := a.check(); err == nil {
			t.Errorf("%+v: accepted", a)
		}
	}
}
