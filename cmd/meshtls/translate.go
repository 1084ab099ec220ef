package main

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// planBase is where `translate` places workloads when no network exists,
// in a network as wide as a run's (mesh.PlanBits); a run uses its own
// network's prefix.
var planBase = netip.MustParseAddr("10.88.0.0")

func translateCmd() *cobra.Command {
	var proxy, output string
	cmd := &cobra.Command{
		Use:   "translate --proxy NAME FILE...",
		Short: "Print the Envoy config a proxy gets (no Docker needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "json" && output != "yaml" {
				return bad(fmt.Errorf("-o %q: use json or yaml", output))
			}
			m, err := mesh.Load(args...)
			if err != nil {
				return bad(err)
			}
			w, ok := m.Workload(proxy)
			if !ok {
				return bad(fmt.Errorf("--proxy %q: no such workload (use name, or namespace/name outside default)", proxy))
			}
			if !w.HasProxy() {
				return bad(fmt.Errorf("--proxy %q: workload has no Envoy (sidecar: false or external)", proxy))
			}
			set, err := certs.NewSet()
			if err != nil {
				return err
			}
			res, err := translate.Translate(m, w, &translate.Env{Addrs: m.AddressPlan(netip.PrefixFrom(planBase, m.PlanBits()).Masked()), Certs: certs.NewStore(set)})
			if err != nil {
				return bad(err)
			}
			out, err := renderResources(res)
			if err != nil {
				return err
			}
			if output == "yaml" {
				if out, err = yaml.JSONToYAML(out); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(append(out, '\n'))
			return err
		},
	}
	cmd.Flags().StringVar(&proxy, "proxy", "", "workload whose proxy config to print (name, or namespace/name)")
	cmd.Flags().StringVarP(&output, "output", "o", "json", "json or yaml")
	_ = cmd.MarkFlagRequired("proxy")
	return cmd
}

// renderResources prints each resource in protobuf JSON, private keys redacted.
func renderResources(res *translate.Resources) ([]byte, error) {
	conv := func(msgs []proto.Message) ([]json.RawMessage, error) {
		out := []json.RawMessage{}
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	}
	doc := map[string][]json.RawMessage{}
	var err error
	if doc["listeners"], err = conv(msgs(res.Listeners)); err != nil {
		return nil, err
	}
	if doc["clusters"], err = conv(msgs(res.Clusters)); err != nil {
		return nil, err
	}
	if doc["routes"], err = conv(msgs(res.Routes)); err != nil {
		return nil, err
	}
	var secrets []proto.Message
	for _, s := range res.Secrets {
		c := proto.Clone(s)
		translate.RedactSecret(c)
		secrets = append(secrets, c)
	}
	if doc["secrets"], err = conv(secrets); err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
}

func msgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
