// Package envoytest finds the Envoy binary that tests run.
package envoytest

import (
	"testing"

	"github.com/meshtls/meshtls/envoybin"
)

// Binary finds the Envoy used by live tests as a run would (envoybin.Find:
// ENVOY_BINARY, ENVOY_VERSION, the module's bin/envoy, PATH, the user
// cache). Without one the test fails (or skips under -short): a live check
// that silently does not run proves nothing.
func Binary(t testing.TB) string {
	t.Helper()
	p, _, err := envoybin.Find("")
	if err != nil && testing.Short() {
		t.Skipf("%v; skipped under -short", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}
