package crosscheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// oracleForTest returns the oracle program: $MESHTLS_ORACLE (make test
// sets it), else it is built into ../bin (minutes the first time: Istio's
// config generator compiles; then cached).
func oracleForTest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the oracle program (Istio's config generator); -short skips it")
	}
	if p := os.Getenv("MESHTLS_ORACLE"); p != "" {
		return p
	}
	out, err := filepath.Abs("../bin/" + OracleBinary)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/meshtls-oracle")
	cmd.Dir = "../oracle"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the oracle (%s): %v\n%s", BuildHint, err, b)
	}
	return out
}

func shippedBundles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"../scenarios/testdata", "../bench/matrix"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found %d bundles; expected every bundle of scenarios/testdata and bench/matrix", len(files))
	}
	return files
}

// Every shipped bundle, every proxy: no behavioural difference from
// istiod's own config that the allowlist does not explain, and no
// allowlist entry that explains nothing.
func TestShippedBundlesMatchIstiod(t *testing.T) {
	oracle := oracleForTest(t)
	allow, err := LoadAllowlist("allowlist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	diffs, err := Diff(context.Background(), shippedBundles(t), Options{Oracle: oracle, Allowlist: allow}, &report)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("MESHTLS_ORACLE_REPORT"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "oracle-report.txt"), report.Bytes(), 0o644)
	}
	var bad []string
	for _, d := range diffs {
		if d.Unexplained() {
			bad = append(bad, d.String())
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d behavioural differences from istiod not in crosscheck/allowlist.yaml (fix the translator, or allowlist with the reason):\n%s", len(bad), strings.Join(bad, "\n"))
	}
	for _, e := range allow.Unused(false) {
		t.Errorf("allowlist entry %q explains no difference any more: remove it", e.Key)
	}
	t.Log(lastLine(report.String()))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
