package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/mesh"
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
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				m, err := mesh.Load(a)
				if err != nil {
					return bad(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d workloads, %d checks)\n", a, len(m.Workloads), len(m.Checks))
			}
			return nil
		},
	}
}
