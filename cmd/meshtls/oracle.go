package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/crosscheck"
)

func oracleCmd() *cobra.Command {
	var allowPath string
	var full bool
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
			files, err := expandFiles(args)
			if err != nil {
				return bad(err)
			}
			oracle, err := crosscheck.FindOracle()
			if err != nil {
				return bad(err)
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
	cmd.Flags().BoolVar(&full, "full", false, "print every line of both skeletons, not only differences")
	return cmd
}
