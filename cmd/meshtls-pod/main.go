// Command meshtls-pod is the in-pod program of meshtls, one static binary
// for FROM-scratch images:
//
//	meshtls-pod agent [--config /var/run/meshtls/pod.json] [--socket PATH]
//	meshtls-pod init --uid 1337 --gid 1337 --outbound-port 15001 --inbound-port 15006 [--iface eth0]
//
// agent runs the echo app, the control API on a Unix socket and packet
// capture; init programs Istio-like traffic redirection (nftables, netlink).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshtls/meshtls/pod"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "meshtls-pod:", err)
		os.Exit(1)
	}
}

const usage = "usage: meshtls-pod agent [--config FILE] [--socket PATH] | meshtls-pod init --uid N --gid N --outbound-port P --inbound-port P [--iface NAME] | meshtls-pod init --no-capture --dnat ADDR:PORT=TARGET..."

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "agent":
		return agent(args[1:])
	case "init":
		return initCmd(args[1:])
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
}

func agent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	config := fs.String("config", pod.ConfigFile, "pod config (pod.Config JSON)")
	sock := fs.String("socket", pod.AgentSock, "Unix socket for the agent API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := pod.LoadConfig(*config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return pod.RunAgent(ctx, cfg, pod.AgentOptions{}, *sock, os.Stdout)
}

func initCmd(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	uid := fs.Uint("uid", 1337, "proxy uid whose traffic is not redirected")
	gid := fs.Uint("gid", 1337, "proxy gid whose traffic is not redirected")
	out := fs.Uint("outbound-port", 15001, "port outbound TCP is redirected to")
	in := fs.Uint("inbound-port", 15006, "port inbound TCP is redirected to")
	iface := fs.String("iface", "eth0", "interface whose inbound TCP is redirected")
	noCapture := fs.Bool("no-capture", false, "a pod without sidecar: program only --dnat rules")
	var dnat []pod.PortMap
	fs.Func("dnat", "ADDR:PORT=TARGETPORT service port translation for a pod without sidecar (repeatable)", func(s string) error {
		m, err := pod.ParsePortMap(s)
		dnat = append(dnat, m)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *noCapture {
		if err := pod.Redirect(pod.RedirectConfig{ServiceDNAT: dnat}); err != nil {
			return err
		}
		fmt.Printf("meshtls-pod: %d service port translations installed (table ip %s)\n", len(dnat), pod.RedirectTable)
		return nil
	}
	if *out == 0 || *out > 65535 || *in == 0 || *in > 65535 {
		return fmt.Errorf("ports must be 1..65535 (got outbound %d, inbound %d)", *out, *in)
	}
	if err := pod.Redirect(pod.RedirectConfig{
		UID: uint32(*uid), GID: uint32(*gid),
		OutboundPort: uint16(*out), InboundPort: uint16(*in),
		Iface: *iface, ServiceDNAT: dnat,
	}); err != nil {
		return err
	}
	fmt.Printf("meshtls-pod: redirection installed (table ip %s: outbound tcp -> :%d except uid %d/gid %d and 127.0.0.0/8; inbound tcp on %s -> :%d)\n",
		pod.RedirectTable, *out, *uid, *gid, *iface, *in)
	return nil
}
