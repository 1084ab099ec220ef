package pod

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exe is the in-pod program's name inside the pod image (/meshtls-pod). The
// harness copies the running binary (meshtls, or a test binary importing the
// harness) there and dispatches on this argv[0], so the in-pod program ships
// inside every binary that can start a mesh.
const Exe = "meshtls-pod"

const usage = "usage: meshtls-pod agent [--config FILE] [--socket PATH] | meshtls-pod init --uid N --gid N --outbound-port P --inbound-port P [--iface NAME] [--dnat ADDR:PORT=TARGET...] [--netpol FILE] [-- agent ...] | meshtls-pod init --no-capture [--dnat ADDR:PORT=TARGET...] [--netpol FILE] [-- agent ...] | meshtls-pod netpol --file FILE [--iface NAME]"

// Main is the in-pod program:
//
//	meshtls-pod agent [--config /var/run/meshtls/pod.json] [--socket PATH]
//	meshtls-pod init --uid 1337 --gid 1337 --outbound-port 15001 --inbound-port 15006 [--iface eth0] [--netpol FILE] [-- agent ...]
//	meshtls-pod netpol --file FILE
//
// agent runs the echo app, the control API on a Unix socket and packet
// capture; init programs Istio-like traffic redirection (nftables, netlink)
// and exits, or, given a command after "--", runs it in its place without
// CAP_NET_ADMIN (one container does istio-init's work, then the app's).
// init's --netpol and netpol program the pod's NetworkPolicy filter
// (ApplyNetPolicy): init before the app and its proxy run, netpol again
// when the policies change (the harness runs it in the pod with the
// capability, as a network plugin programs a pod from the node).
func Main(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "agent":
		return agentCmd(args[1:], stdout)
	case "init":
		return initCmd(args[1:], stdout)
	case "netpol":
		return netpolCmd(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
}

func agentCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	config := fs.String("config", ConfigFile, "pod config (pod.Config JSON)")
	sock := fs.String("socket", AgentSock, "Unix socket for the agent API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return RunAgent(ctx, cfg, AgentOptions{}, *sock, stdout)
}

func initCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	uid := fs.Uint("uid", 1337, "proxy uid whose traffic is not redirected")
	gid := fs.Uint("gid", 1337, "proxy gid whose traffic is not redirected")
	out := fs.Uint("outbound-port", 15001, "port outbound TCP is redirected to")
	in := fs.Uint("inbound-port", 15006, "port inbound TCP is redirected to")
	iface := fs.String("iface", "eth0", "interface whose inbound TCP is redirected")
	noCapture := fs.Bool("no-capture", false, "a pod without sidecar: program only --dnat rules")
	// Istio's capture annotations, with istio-iptables' syntax (-b, -d, -o, -i, -x).
	inclIn := fs.String("include-inbound-ports", "*", `inbound ports captured: "*" all, "" none, or a list`)
	exclIn := fs.String("exclude-inbound-ports", "", "inbound ports not captured (with include \"*\")")
	exclOut := fs.String("exclude-outbound-ports", "", "outbound destination ports not captured")
	inclRanges := fs.String("include-outbound-ip-ranges", "*", `outbound CIDRs captured: "*" all, "" none, or a list`)
	exclRanges := fs.String("exclude-outbound-ip-ranges", "", "outbound CIDRs not captured")
	var dnat []PortMap
	fs.Func("dnat", "ADDR:PORT=TARGET service port translation, kube-proxy's (repeatable; with capture, for the proxy's own connections)", func(s string) error {
		m, err := ParsePortMap(s)
		dnat = append(dnat, m)
		return err
	})
	netpol := fs.String("netpol", "", "NetPolicy file (JSON) to program before the app runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *netpol != "" {
		if err := programNetPolicy(*netpol, *iface, stdout); err != nil {
			return err
		}
	}
	// What runs after the init (after "--"), without CAP_NET_ADMIN.
	then := func() error {
		if fs.NArg() == 0 {
			return nil
		}
		if fs.Arg(0) != "agent" {
			return fmt.Errorf("init: only the agent can follow the init (got %q); %s", fs.Arg(0), usage)
		}
		return execWithoutNetAdmin(fs.Args())
	}
	if *noCapture {
		if len(dnat) > 0 {
			if err := Redirect(RedirectConfig{ServiceDNAT: dnat}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "meshtls-pod: %d service port translations installed (table ip %s)\n", len(dnat), RedirectTable)
		}
		return then()
	}
	if *out == 0 || *out > 65535 || *in == 0 || *in > 65535 {
		return fmt.Errorf("ports must be 1..65535 (got outbound %d, inbound %d)", *out, *in)
	}
	cfg := RedirectConfig{
		UID: uint32(*uid), GID: uint32(*gid),
		OutboundPort: uint16(*out), InboundPort: uint16(*in),
		Iface: *iface, ServiceDNAT: dnat,
	}
	var err error
	switch *inclIn {
	case "*":
	case "":
		cfg.NoInbound = true
	default:
		if cfg.InboundPorts, err = ParsePorts(*inclIn); err != nil {
			return fmt.Errorf("--include-inbound-ports: %w", err)
		}
	}
	if cfg.ExcludeInbound, err = ParsePorts(*exclIn); err != nil {
		return fmt.Errorf("--exclude-inbound-ports: %w", err)
	}
	if cfg.ExcludeOutbound, err = ParsePorts(*exclOut); err != nil {
		return fmt.Errorf("--exclude-outbound-ports: %w", err)
	}
	switch *inclRanges {
	case "*":
	case "":
		cfg.NoOutbound = true
	default:
		if cfg.OutboundRanges, err = ParseRanges(*inclRanges); err != nil {
			return fmt.Errorf("--include-outbound-ip-ranges: %w", err)
		}
	}
	if cfg.ExcludeRanges, err = ParseRanges(*exclRanges); err != nil {
		return fmt.Errorf("--exclude-outbound-ip-ranges: %w", err)
	}
	if err := Redirect(cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "meshtls-pod: redirection installed (table ip %s: outbound tcp -> :%d except uid %d/gid %d and 127.0.0.0/8; inbound tcp on %s -> :%d)\n",
		RedirectTable, *out, *uid, *gid, *iface, *in)
	return then()
}

func netpolCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("netpol", flag.ContinueOnError)
	file := fs.String("file", "", "NetPolicy file (JSON) the harness wrote")
	iface := fs.String("iface", "eth0", "the pod's network interface")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		return fmt.Errorf("netpol: want --file FILE; %s", usage)
	}
	return programNetPolicy(*file, *iface, stdout)
}

func programNetPolicy(file, iface string, stdout io.Writer) error {
	p, err := LoadNetPolicy(file)
	if err != nil {
		return err
	}
	if err := ApplyNetPolicy(p, iface); err != nil {
		return err
	}
	count := func(r *NetRules) string {
		if r == nil {
			return "not isolated"
		}
		return fmt.Sprintf("%d allowed", len(r.Allow))
	}
	fmt.Fprintf(stdout, "meshtls-pod: network policy installed (table ip %s: ingress %s, egress %s)\n", NetPolicyTable, count(p.Ingress), count(p.Egress))
	return nil
}
