package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/crosscheck"
)

// Docs that work when pasted: every YAML and shell example in README.md and
// docs/ is extracted and checked.
//   - a YAML block with apiVersion is a bundle: `meshtls validate` accepts
//     it; other YAML (CI jobs) parses;
//   - each shell command runs where that is cheap and safe (validate,
//     translate, version, setup --list; run on the README's bundle when
//     live), and otherwise is checked against the tree: its files exist, its
//     flags parse, `make` targets and `go test` packages exist.
// Commands run in a folder that mirrors the repository, plus bundle.yaml
// (the README's example bundle, as the README says) and bundles/ (a user's
// bundle folder in docs/ci.md).

type docBlock struct {
	file, lang, text string
	line             int
}

func docBlocks(t *testing.T, root string) []docBlock {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, more...)
	var out []docBlock
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *docBlock
		var b strings.Builder
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.HasPrefix(line, "```"):
				cur = &docBlock{file: f, lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n + 1}
				b.Reset()
			case cur != nil && strings.HasPrefix(line, "```"):
				cur.text = b.String()
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				b.WriteString(line + "\n")
			}
		}
	}
	return out
}

func TestDocsExamples(t *testing.T) {
	root, err := filepath.Abs(repoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, root)
	var readmeBundle string
	for _, b := range blocks {
		if b.lang == "yaml" && strings.HasSuffix(b.file, "README.md") && strings.Contains(b.text, "kind: Check") {
			readmeBundle = b.text
		}
	}
	if readmeBundle == "" {
		t.Fatal("README.md has no example bundle with a Check")
	}
	work := docsWorkdir(t, root, readmeBundle)
	t.Chdir(work)

	var sh, yml int
	for _, b := range blocks {
		name := strings.TrimPrefix(b.file, root+"/") + ":" + strconv.Itoa(b.line)
		switch b.lang {
		case "yaml":
			yml++
			t.Run(name, func(t *testing.T) { checkYAMLExample(t, b.text) })
		case "sh":
			sh++
			t.Run(name, func(t *testing.T) { checkShellExample(t, root, b.text) })
		case "":
		default:
			t.Errorf("%s: code block of language %q: the docs test knows yaml and sh", name, b.lang)
		}
	}
	if sh < 5 || yml < 3 {
		t.Fatalf("found %d shell and %d YAML examples; the extraction is broken", sh, yml)
	}
}

// docsWorkdir mirrors the repository's top level by symlinks and adds the
// example files the docs name.
func docsWorkdir(t *testing.T, root, bundle string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"bundle.yaml", "bundles/bundle.yaml"} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(bundle), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkYAMLExample(t *testing.T, text string) {
	if !strings.Contains(text, "apiVersion:") {
		var v any
		if err := yaml.Unmarshal([]byte(text), &v); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, text)
		}
		return
	}
	f := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "validate", f); code != 0 {
		t.Fatalf("meshtls validate: exit %d\n%s%s\n--- the example:\n%s", code, out, errOut, text)
	}
}

func checkShellExample(t *testing.T, root, text string) {
	file, err := syntax.NewParser(syntax.KeepComments(false)).Parse(strings.NewReader(text), "")
	if err != nil {
		t.Fatalf("not shell: %v\n%s", err, text)
	}
	built := map[string]bool{} // images tagged by docker build in this block
	syntax.Walk(file, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var args []string
		for _, w := range call.Args {
			s, err := expand.Literal(nil, w)
			if err != nil {
				t.Errorf("cannot expand %v: %v", w, err)
				return false
			}
			args = append(args, s)
		}
		checkCommand(t, root, args, built)
		return false
	})
}

var makeTarget = regexp.MustCompile(`(?m)^([a-zA-Z0-9_-]+):`)

func checkCommand(t *testing.T, root string, args []string, built map[string]bool) {
	t.Helper()
	line := strings.Join(args, " ")
	switch {
	case args[0] == "meshtls" || args[0] == "bin/meshtls":
		checkCLI(t, args[1:])
	case len(args) > 2 && args[0] == "go" && args[1] == "run" && args[2] == "./cmd/meshtls":
		checkCLI(t, args[3:])
	case args[0] == "make":
		mk, _ := os.ReadFile(filepath.Join(root, "Makefile"))
		targets := map[string]bool{}
		for _, m := range makeTarget.FindAllStringSubmatch(string(mk), -1) {
			targets[m[1]] = true
		}
		for _, a := range args[1:] {
			if strings.Contains(a, "=") {
				continue // a variable, e.g. BUNDLE=bundle.yaml
			}
			if !targets[a] {
				t.Errorf("%s: the Makefile has no target %s", line, a)
			}
		}
	case len(args) > 2 && args[0] == "go" && args[1] == "test":
		var pkgs []string
		for _, a := range args[2:] {
			if strings.HasPrefix(a, "./") {
				pkgs = append(pkgs, a)
			}
		}
		cmd := exec.Command("go", append([]string{"list"}, pkgs...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: go list: %v\n%s", line, err, out)
		}
	case len(args) > 2 && args[0] == "go" && args[1] == "install":
		pkg, _, _ := strings.Cut(args[2], "@")
		rel, ok := strings.CutPrefix(pkg, "github.com/meshtls/meshtls/")
		if _, err := os.Stat(filepath.Join(root, rel, "main.go")); !ok || err != nil {
			t.Errorf("%s: %s is no command of this module", line, pkg)
		}
	case args[0] == "docker" && len(args) > 1 && args[1] == "build":
		for i, a := range args {
			switch a {
			case "-f":
				if _, err := os.Stat(args[i+1]); err != nil {
					t.Errorf("%s: %v", line, err)
				}
			case "-t":
				built[args[i+1]] = true
			}
		}
	case args[0] == "docker" && len(args) > 1 && args[1] == "run":
		found := false
		for _, a := range args {
			found = found || built[a]
		}
		if !found {
			t.Errorf("%s: runs no image the block built", line)
		}
	case args[0] == "mkdir":
	default:
		t.Errorf("%s: the docs test does not know this command; teach it, or do not document it", line)
	}
}

// checkCLI runs a meshtls command line from the docs, or checks it when
// running it would be slow or change the machine.
func checkCLI(t *testing.T, args []string) {
	t.Helper()
	line := "meshtls " + strings.Join(args, " ")
	if len(args) == 0 {
		t.Errorf("%s: no subcommand", line)
		return
	}
	c, rest, err := newRoot(io.Discard).Find(args)
	if err == nil {
		err = c.ParseFlags(rest)
	}
	if err != nil || c.Name() == "meshtls" {
		t.Errorf("%s: %v", line, err)
		return
	}
	cmd, files := c.Name(), c.Flags().Args()
	flags := map[string]bool{}
	c.Flags().Visit(func(f *pflag.Flag) { flags[f.Name] = true })
	mustRun := func(a ...string) {
		if code, out, errOut := run(t, a...); code != 0 {
			t.Errorf("%s: exit %d\n%s%s", strings.Join(a, " "), code, out, errOut)
		}
	}
	switch cmd {
	case "validate", "translate", "version":
		mustRun(args...)
	case "setup":
		if flags["list"] {
			mustRun(args...)
		}
	case "oracle":
		// Needs the oracle program (minutes to build): check the bundles.
		mustRun(append([]string{"validate"}, files...)...)
	case "run":
		if len(files) == 0 {
			t.Errorf("%s: no bundle", line)
			return
		}
		mustRun(append([]string{"validate"}, files...)...)
		if f := c.Flags().Lookup("control-plane"); f != nil && f.Value.String() == "istio" {
			if _, err := crosscheck.FindOracle(); err != nil {
				// make test builds the oracle; a plain go test may not have it.
				t.Logf("%s: validated only: %v", line, err)
				return
			}
		}
		if !testing.Short() && len(files) == 1 && files[0] == "bundle.yaml" && !flags["envoy-version"] {
			live(t)
			mustRun(args...)
		}
	default:
		t.Errorf("%s: unknown subcommand", line)
	}
}
