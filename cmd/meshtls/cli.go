package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
)

// Exit codes: the contract in README.md and docs/bundles.md.
const (
	exitOK       = 0
	exitMismatch = 1
	exitBad      = 2
)

// exitError carries an exit status through cobra.
type exitError struct {
	code    int
	err     error
	printed bool // the command already wrote its JSON output
}

func (e *exitError) Error() string { return e.err.Error() }

func bad(err error) error { return &exitError{code: exitBad, err: err} }

func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	return exitCode(cmd, err, stdout, stderr)
}

// newRoot is the meshtls command tree.
func newRoot(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "meshtls",
		Short:         "Prove what Istio TLS settings do, on real Envoy proxies",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	showVersion := root.Flags().Bool("version", false, "print the version (as `meshtls version`)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *showVersion {
			fmt.Fprint(stdout, versionText(""))
			return nil
		}
		return cmd.Help()
	}
	root.AddCommand(validateCmd(), translateCmd(), runCmd(), diffCmd(), setupCmd(), versionCmd(), oracleCmd())
	return root
}

// exitCode reports a command's error (with -o json, also as one JSON
// object on stdout) and returns the exit status.
func exitCode(cmd *cobra.Command, err error, stdout, stderr io.Writer) int {
	code, msg := exitBad, err // flag and argument errors are bad input
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ee.err
	}
	if code == exitMismatch || msg == nil {
		return code // the output already says what failed
	}
	fmt.Fprintln(stderr, "meshtls:", msg)
	if o := cmd.Flags().Lookup("output"); o != nil && o.Value.String() == "json" && (ee == nil || !ee.printed) {
		_ = writeJSON(stdout, errorOutput{Error: errorBody{Message: msg.Error(), ExitCode: code, Problems: problemsOf(msg)}})
	}
	return code
}

func validateCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check bundles without Docker",
		Long: `Each file is checked on its own, as ` + "`run`" + ` would load it as one scenario
(a directory stands for its *.yaml and *.yml files, and each of its
subdirectories for one bundle of all the YAML inside), translation to Envoy
config included: a bundle validate accepts is one run accepts. Every problem of every
file is reported, each naming the file, document, kind/name and field.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := mesh.Bundles(args...)
			if err != nil {
				return bad(err)
			}
			if output != "text" && output != "json" {
				return bad(fmt.Errorf("-o %q: use text or json", output))
			}
			var out validateOutput
			for _, f := range files {
				s, err := harness.LoadScenario(f)
				vf := validatedFile{File: f, Valid: err == nil}
				if err != nil {
					out.Summary.Invalid++
					if vf.Problems = problemsOf(err); len(vf.Problems) == 0 {
						vf.Error = err.Error()
					}
					if output == "text" {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s: invalid\n%s\n", f, indent(err.Error()))
					}
				} else {
					vf.Workloads, vf.Checks = len(s.Mesh.Workloads), len(s.Mesh.Checks)
					if output == "text" {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s, %s)\n", f, plural(vf.Workloads, "workload"), plural(vf.Checks, "check"))
					}
					printNotices(cmd.ErrOrStderr(), s.Mesh)
				}
				out.Files = append(out.Files, vf)
			}
			out.Summary.Files = len(files)
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			if out.Summary.Invalid > 0 {
				return &exitError{code: exitBad, err: fmt.Errorf("%d of %s invalid", out.Summary.Invalid, plural(len(files), "file")), printed: output == "json"}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json (json: one object on stdout: every file with its problems)")
	return cmd
}

// plural is "1 check", "2 checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// printNotices lists what loading did that the user should know (skipped
// documents, capped replicas, fields accepted without translation because
// they cannot change TLS or reachability) and the config Istio accepts but
// partly ignores (warnings), one line each.
func printNotices(w io.Writer, m *mesh.Mesh) {
	for _, n := range m.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}
	for _, n := range m.Warnings {
		fmt.Fprintf(w, "warning: %s\n", n)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
