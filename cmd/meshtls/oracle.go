package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/crosscheck"
	"github.com/meshtls/meshtls/mesh"
)

func oracleCmd() *cobra.Command {
	var allowPath string
	var full bool
	var dump string
	cmd := &cobra.Command{
		Use:   "oracle FILE|DIR...",
		Short: "Diff each proxy's config against istiod's own (Istio's config generator, no Docker)",
		Long: `Runs Istio's own config generator (the meshtls-oracle program, built with
` + crosscheck.BuildHint + `) on each bundle file and compares, proxy by proxy, what decides TLS:
per outbound cluster the TLS each endpoint gets; per listener the filter chains;
and a simulation of where an mTLS, a plaintext and an app-TLS connection lands on
every declared port and one undeclared port (` + fmt.Sprint(9999) + `).

Lines marked ! are behavioural differences the allowlist does not explain (exit 1),
a are explained by the allowlist (with its reason), ~ are structural (reported only).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := mesh.Bundles(args...)
			if err != nil {
				return bad(err)
			}
			oracle, err := crosscheck.FindOracle()
			if err != nil {
				return bad(err)
			}
			if dump != "" {
				return dumpIstio(cmd, oracle, files, dump)
			}
			var allow *crosscheck.Allowlist
			if allowPath != "" {
				if allow, err = crosscheck.LoadAllowlist(allowPath); err != nil {
					return bad(err)
				}
			}
			diffs, err := crosscheck.Diff(cmd.Context(), files, crosscheck.Options{Oracle: oracle, Allowlist: allow, Full: full}, cmd.OutOrStdout())
			if err != nil {
				return bad(err)
			}
			for _, d := range diffs {
				if d.Unexplained() {
					return &exitError{code: exitMismatch}
				}
			}
			return nil
		},
	}
	def := ""
	if _, err := os.Stat(crosscheck.DefaultAllowlist); err == nil {
		def = crosscheck.DefaultAllowlist
	}
	cmd.Flags().StringVar(&allowPath, "allowlist", def, "deliberate deviations (YAML); empty: none")
	cmd.Flags().StringVar(&dump, "istio-config", "", "print istiod's config for this proxy (name, or namespace/name) as YAML instead of diffing")
	cmd.Flags().BoolVar(&full, "full", false, "print every line of both skeletons, not only differences")
	return cmd
}

// dumpIstio prints istiod's config of one proxy, as `translate` prints ours.
func dumpIstio(cmd *cobra.Command, oracle string, files []string, proxy string) error {
	if len(files) != 1 {
		return bad(fmt.Errorf("--istio-config: give one bundle file, not %d", len(files)))
	}
	b, err := crosscheck.LoadBundle(files[0])
	if err != nil {
		return bad(err)
	}
	w, ok := b.Mesh.Workload(proxy)
	if !ok || !w.HasProxy() {
		return bad(fmt.Errorf("--istio-config %q: no workload with a proxy of that name", proxy))
	}
	_, cfgs, err := crosscheck.Generate(cmd.Context(), oracle, []*crosscheck.Bundle{b})
	if err != nil {
		return bad(err)
	}
	out, err := renderResources(cfgs[0].Proxies[w.ID()])
	if err != nil {
		return err
	}
	if out, err = yaml.JSONToYAML(out); err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
