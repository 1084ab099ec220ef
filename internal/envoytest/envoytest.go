// Package envoytest finds the Envoy binary that tests run.
package envoytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary finds the Envoy used by live tests: $ENVOY_BINARY, then the
// module's bin/envoy (installed by `make setup`), then envoy on PATH.
// Without one the test fails (or skips under -short): a live check that
// silently does not run proves nothing.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ENVOY_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("ENVOY_BINARY=%s: %v", p, err)
		}
		return p
	}
	if root, ok := moduleRoot(); ok {
		p := filepath.Join(root, "bin", "envoy")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	if testing.Short() {
		t.Skip("no Envoy binary (ENVOY_BINARY, bin/envoy, PATH); skipped under -short")
	}
	t.Fatal("no Envoy binary found (ENVOY_BINARY, bin/envoy or envoy on PATH): run `make setup`")
	return ""
}

// moduleRoot is the nearest directory at or above the working directory
// (a test's package directory) that holds go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
