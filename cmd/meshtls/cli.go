package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/harness"
)

// Exit codes: the contract in DESIGN.md.
const (
	exitOK       = 0
	exitMismatch = 1
	exitBad      = 2
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func bad(err error) error { return &exitError{code: exitBad, err: err} }

func execute(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "meshtls",
		Short:         "Prove what Istio TLS settings do, on real Envoy proxies",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(validateCmd(), translateCmd(), runCmd())
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != exitMismatch {
			fmt.Fprintln(stderr, "meshtls:", ee.err)
		}
		return ee.code
	}
	// Flag and argument errors are bad input.
	fmt.Fprintln(stderr, "meshtls:", err)
	return exitBad
}

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check bundles without Docker",
		Long: `Each file is checked on its own, as ` + "`run`" + ` would load it as one scenario
(a directory stands for its *.yaml and *.yml files), translation to Envoy
config included: a bundle validate accepts is one run accepts. Every problem of every
file is reported, each naming the file, document, kind/name and field.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expandFiles(args)
			if err != nil {
				return bad(err)
			}
			failed := 0
			for _, f := range files {
				s, err := harness.LoadScenario(f)
				if err != nil {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: invalid\n%s\n", f, indent(err.Error()))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d workloads, %d checks)\n", f, len(s.Mesh.Workloads), len(s.Mesh.Checks))
			}
			if failed > 0 {
				return bad(fmt.Errorf("%d of %d files invalid", failed, len(files)))
			}
			return nil
		},
	}
}

// expandFiles turns directories into their *.yaml and *.yml files, sorted,
// as harness.LoadScenarios does for run.
func expandFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var in []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(a, pat))
			in = append(in, m...)
		}
		if len(in) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml or *.yml files", a)
		}
		sort.Strings(in)
		out = append(out, in...)
	}
	return out, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
