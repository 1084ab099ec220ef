package mesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzFile is the name Parse is given; every problem must carry it.
const fuzzFile = "fuzz.yaml"

// FuzzParse feeds arbitrary bytes to Parse. Whatever the input: no panic;
// an error says something and names the file on every line (a reader of a
// long problem list must be able to tell where each line points); a Mesh
// that loads is one the harness can run without further checks: every
// check's client exists, every workload has a namespace and an identity.
//
// Seeds are every bundle the project ships (mesh and scenario testdata), so
// the fuzzer starts from realistic Istio and meshtls documents.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/*.yaml", "../scenarios/testdata/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	if len(seeds) == 0 {
		f.Fatal("no seed bundles found under testdata/ or ../scenarios/testdata/")
	}
	for _, file := range seeds {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A few shapes the bundles do not have: empty, non-object, separators only.
	for _, s := range []string{"", "---\n", "- a\n- b\n", "apiVersion: v1\n", "a: [\n"} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(fuzzFile, data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if m == nil {
			t.Fatal("Parse returned neither a mesh nor an error")
		}
		checkConsistent(t, m)
	})
}

func checkParseError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.TrimSpace(msg) == "" {
		t.Fatalf("empty error message (%T)", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		if !strings.Contains(msg, fuzzFile) {
			t.Fatalf("error does not name the file %s: %q", fuzzFile, msg)
		}
		return
	}
	if len(ve.Problems) == 0 {
		t.Fatal("ValidationError without problems")
	}
	for i, p := range ve.Problems {
		if p.Source.File != fuzzFile {
			t.Errorf("problem %d has source file %q, want %q: %s", i, p.Source.File, fuzzFile, p)
		}
		if strings.TrimSpace(p.Message) == "" {
			t.Errorf("problem %d has no message: %#v", i, p)
		}
	}
	for i, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, fuzzFile+" (document ") {
			t.Errorf("error line %d does not start with the file and document: %q\nwhole error:\n%s", i, line, msg)
		}
	}
}

func checkConsistent(t *testing.T, m *Mesh) {
	t.Helper()
	ids := map[string]bool{}
	for _, w := range m.Workloads {
		if w.Name == "" || w.Namespace == "" || w.ServiceAccount == "" {
			t.Fatalf("workload %q in namespace %q has service account %q: all three are required", w.Name, w.Namespace, w.ServiceAccount)
		}
		if ids[w.ID()] {
			t.Fatalf("workload %s loaded twice", w.ID())
		}
		ids[w.ID()] = true
		if got, ok := m.Workload(w.ID()); !ok || got != w {
			t.Fatalf("m.Workload(%q) does not find the workload it names", w.ID())
		}
	}
	for _, c := range m.Checks {
		if _, ok := m.Workload(c.From); !ok {
			t.Fatalf("check %s/%s: from %q does not resolve", c.Namespace, c.Name, c.From)
		}
		if c.Via != "" {
			if w, ok := m.Workload(c.Via); !ok || !w.Gateway {
				t.Fatalf("check %s/%s: via %q does not resolve to a gateway", c.Namespace, c.Name, c.Via)
			}
		}
	}
	for _, s := range m.Services {
		if s.Name == "" || s.Namespace == "" {
			t.Fatalf("service %q in namespace %q: both are required", s.Name, s.Namespace)
		}
		for _, p := range s.Ports {
			if p.Port == 0 || p.Port > 65535 || p.TargetPort > 65535 {
				t.Fatalf("service %s: port %d -> %d out of range", s.Hostname(), p.Port, p.TargetPort)
			}
		}
	}
}
