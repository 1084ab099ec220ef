package pod

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

const netnsChildEnv = "MESHTLS_POD_NETNS_CHILD"

// TestRedirect runs TestRedirectInNetns in a fresh network namespace (this
// test binary re-executed with CLONE_NEWNET), so the host is never touched.
func TestRedirect(t *testing.T) {
	if os.Getenv(netnsChildEnv) != "" {
		t.Skip("inside the child")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace (CLONE_NEWNET) and programs nftables in it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip tool to add a test address inside the namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^(TestRedirectInNetns|TestCaptureAnnotationsInNetns|TestRedirectLargeMeshInNetns|TestNetPolicyInNetns)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	for _, name := range []string{"TestRedirectInNetns", "TestCaptureAnnotationsInNetns", "TestRedirectLargeMeshInNetns", "TestNetPolicyInNetns"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("child did not pass %s", name)
		}
	}
}

func TestRedirectInNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		t.Skip("runs inside the namespace TestRedirect creates")
	}
	// 10.9.9.9 is remote (routed out of a veth, as a pod address on the
	// pod network); 10.9.8.8 is local, for the service DNAT case.
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"},
		{"link", "set", "dummy0", "up"}, {"addr", "add", "10.9.9.1/24", "dev", "dummy0"}, {"addr", "add", "10.9.8.8/32", "dev", "lo"}, {"addr", "add", "10.9.8.9/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ln, err := net.Listen("tcp", "0.0.0.0:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other := uint32(4242) // not us: our traffic is redirected
	cfg := RedirectConfig{UID: other, GID: other, OutboundPort: 15001, InboundPort: 15006, Iface: "eth0"}
	for range 2 { // idempotent
		if err := Redirect(cfg); err != nil {
			t.Fatal(err)
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if len(tables) != 1 || tables[0].Name != RedirectTable {
		t.Fatalf("tables after two runs: %v", tables)
	}
	chains, _ := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	rules := map[string]int{}
	for _, ch := range chains {
		rs, err := c.GetRules(tables[0], ch)
		if err != nil {
			t.Fatal(err)
		}
		rules[ch.Name] = len(rs)
	}
	if rules["output"] != 7 || rules["prerouting"] != 1 {
		t.Errorf("rules per chain = %v", rules)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command("nft", "list", "table", "ip", RedirectTable).CombinedOutput()
		t.Logf("nft list table ip %s:\n%s", RedirectTable, out)
		for _, want := range []string{"meta skuid 4242 return", "meta skgid 4242 return", `oifname "lo" ip saddr 127.0.0.6 return`, "ip daddr 127.0.0.0/8 return",
			"meta l4proto tcp redirect to :15001", `iifname "eth0" meta l4proto tcp redirect to :15006`,
			`oifname "lo" ip daddr != 127.0.0.0/8 meta skuid 4242 meta l4proto tcp redirect to :15006`,
			`oifname "lo" ip daddr != 127.0.0.0/8 meta skuid != 4242 return`} {
			if err == nil && !strings.Contains(string(out), want) {
				t.Errorf("nft listing lacks %q", want)
			}
		}
	}

	// Outbound TCP from us lands on 15001, and the original destination is
	// what Envoy reads back with SO_ORIGINAL_DST.
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer c.Close()
		accepted <- originalDst(c)
	}()
	conn, err := net.DialTimeout("tcp", "10.9.9.9:80", 2*time.Second)
	if err != nil {
		t.Fatalf("dial 10.9.9.9:80 with redirection: %v", err)
	}
	conn.Close()
	select {
	case got := <-accepted:
		if got != "10.9.9.9:80" {
			t.Errorf("original destination = %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("15001 listener got no connection")
	}

	// Loopback destinations are not redirected.
	if _, err := net.DialTimeout("tcp", "127.0.0.1:80", 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("127.0.0.1:80 = %v, want refused (not redirected)", err)
	}
	// The app calling its own pod address (out of lo) is not captured.
	if _, err := net.DialTimeout("tcp", "10.9.8.8:80", 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("app to own address = %v, want refused (not redirected)", err)
	}
	// The proxy's own uid is not redirected: make us the proxy.
	cfg.UID = uint32(os.Getuid())
	if err := Redirect(cfg); err != nil {
		t.Fatal(err)
	}
	// Not redirected, the SYN leaves by the veth where nobody answers; if it
	// were redirected, the 15001 listener would accept at once.
	if c, err := net.DialTimeout("tcp", "10.9.9.9:80", 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("proxy uid dial to a remote address was accepted: want it not redirected")
	}

	// A pod without sidecar: only the service port translation.
	svc, err := net.Listen("tcp", "10.9.8.8:80")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := Redirect(RedirectConfig{ServiceDNAT: []PortMap{{Addr: netip.MustParseAddr("10.9.8.8"), Port: 8000, Targets: []netip.AddrPort{netip.MustParseAddrPort("10.9.8.8:80")}}}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := svc.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := net.DialTimeout("tcp", "10.9.8.8:8000", 2*time.Second); err != nil {
		t.Errorf("service port 8000 -> targetPort 80: %v", err)
	} else {
		c.Close()
	}

	// A cluster IP (in the pod's subnet, routed out like any pod address)
	// spreads over its endpoints: each is reached within a bounded number
	// of connections (the chance of missing one in 64 is 2^-63).
	got := make(chan string, 128)
	for _, a := range []string{"10.9.8.8:81", "10.9.8.9:81"} {
		ep, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		go func() {
			for {
				c, err := ep.Accept()
				if err != nil {
					return
				}
				got <- c.LocalAddr().String()
				c.Close()
			}
		}()
	}
	vip := PortMap{Addr: netip.MustParseAddr("10.9.9.200"), Port: 80, Targets: []netip.AddrPort{
		netip.MustParseAddrPort("10.9.8.8:81"), netip.MustParseAddrPort("10.9.8.9:81")}}
	if err := Redirect(RedirectConfig{ServiceDNAT: []PortMap{vip}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 64 && len(seen) < 2; i++ {
		c, err := net.DialTimeout("tcp", "10.9.9.200:80", 2*time.Second)
		if err != nil {
			t.Fatalf("cluster IP 10.9.9.200:80: %v", err)
		}
		seen[<-got] = true
		c.Close()
	}
	if !seen["10.9.8.8:81"] || !seen["10.9.8.9:81"] {
		t.Errorf("endpoints reached through the cluster IP: %v, want both", seen)
	}

	// With capture, the service DNAT applies to the proxy's own
	// connections (the app's are redirected before it).
	one := PortMap{Addr: netip.MustParseAddr("10.9.9.201"), Port: 80, Targets: []netip.AddrPort{netip.MustParseAddrPort("10.9.8.9:81")}}
	cfg.ServiceDNAT = []PortMap{one}
	if err := Redirect(cfg); err != nil { // cfg.UID is ours: we are the proxy
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", "10.9.9.201:80", 2*time.Second); err != nil {
		t.Errorf("proxy to cluster IP 10.9.9.201:80 with capture: %v", err)
	} else {
		if a := <-got; a != "10.9.8.9:81" {
			t.Errorf("proxy to cluster IP reached %s, want 10.9.8.9:81", a)
		}
		c.Close()
	}
	cfg.UID, cfg.GID = other, other // the app: redirected to 15001, not translated
	if err := Redirect(cfg); err != nil {
		t.Fatal(err)
	}
	redirected := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		redirected <- err
	}()
	if c, err := net.DialTimeout("tcp", "10.9.9.201:80", 2*time.Second); err != nil {
		t.Errorf("app to cluster IP with capture: %v, want redirected to 15001", err)
	} else {
		c.Close()
		select {
		case err := <-redirected:
			if err != nil {
				t.Errorf("15001 listener: %v", err)
			}
		case a := <-got:
			t.Errorf("app to cluster IP reached endpoint %s, want the 15001 listener", a)
		}
	}
}

func TestParsePortMap(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: targets joined, or "error"
	}{
		{"10.0.0.2:80=8080", "10.0.0.2:8080"},
		{"10.0.0.254:80=10.0.0.2:8080,10.0.0.3:9090", "10.0.0.2:8080 10.0.0.3:9090"},
		{"10.0.0.254:80=", "error"},
		{"10.0.0.254:80=10.0.0.2", "error"},
		{"10.0.0.254=8080", "error"},
		{"10.0.0.254:80=10.0.0.2:0", "error"},
	} {
		m, err := ParsePortMap(tc.in)
		got := "error"
		if err == nil {
			var ts []string
			for _, x := range m.Targets {
				ts = append(ts, x.String())
			}
			got = strings.Join(ts, " ")
		}
		if got != tc.want {
			t.Errorf("ParsePortMap(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestCaptureAnnotationsInNetns: Istio's capture annotations, as init
// flags, leave the excluded ports and ranges alone and keep the rest.
func TestCaptureAnnotationsInNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		t.Skip("runs inside the namespace TestRedirect creates")
	}
	ln, err := net.Listen("tcp", "0.0.0.0:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	redirected := func(addr string) bool {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil // nobody else answers on the veth
	}
	base := RedirectConfig{UID: 4242, GID: 4242, OutboundPort: 15001, InboundPort: 15006, Iface: "eth0"}
	for _, tc := range []struct {
		name string
		cfg  func(*RedirectConfig)
		want map[string]bool
	}{
		{"exclude port and range", func(c *RedirectConfig) {
			c.ExcludeOutbound = []uint16{81}
			c.ExcludeRanges = []netip.Prefix{netip.MustParsePrefix("10.9.9.128/25")}
		}, map[string]bool{"10.9.9.9:80": true, "10.9.9.9:81": false, "10.9.9.200:80": false}},
		{"include range", func(c *RedirectConfig) {
			c.OutboundRanges = []netip.Prefix{netip.MustParsePrefix("10.9.9.0/25")}
		}, map[string]bool{"10.9.9.9:80": true, "10.9.9.200:80": false}},
		{"include none", func(c *RedirectConfig) { c.NoOutbound = true }, map[string]bool{"10.9.9.9:80": false}},
	} {
		cfg := base
		tc.cfg(&cfg)
		if err := Redirect(cfg); err != nil {
			t.Fatal(err)
		}
		for addr, want := range tc.want {
			if got := redirected(addr); got != want {
				t.Errorf("%s: %s redirected = %v, want %v", tc.name, addr, got, want)
			}
		}
	}
}

func originalDst(c net.Conn) string {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err.Error()
	}
	var addr string
	_ = rc.Control(func(fd uintptr) {
		// SO_ORIGINAL_DST (80) returns a sockaddr_in; the IPv6Mreq getter
		// is the usual way to read those 16 bytes.
		m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, 80)
		if err != nil {
			addr = err.Error()
			return
		}
		b := m.Multiaddr
		addr = fmt.Sprintf("%d.%d.%d.%d:%d", b[4], b[5], b[6], b[7], int(b[2])<<8|int(b[3]))
	})
	return addr
}

// A sidecar pod of a large mesh gets a DNAT rule per Service port besides
// its capture, all in one transaction whose every message the kernel
// acknowledges before any is read: 1,000 Service ports (a 300-pod mesh has
// 600) overflowed the netlink socket's default receive buffer (ENOBUFS).
func TestRedirectLargeMeshInNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		t.Skip("runs inside the namespace TestRedirect creates")
	}
	cfg := RedirectConfig{UID: 4242, GID: 4242, OutboundPort: 15001, InboundPort: 15006, Iface: "eth0"}
	for i := range 1000 {
		vip := netip.AddrFrom4([4]byte{172, 30, byte(3 - i/250), byte(254 - i%250)})
		cfg.ServiceDNAT = append(cfg.ServiceDNAT, PortMap{Addr: vip, Port: 8080,
			Targets: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 30, 0, byte(2 + i%250)}), 8080)}})
	}
	if err := Redirect(cfg); err != nil {
		t.Fatal(err)
	}
}
