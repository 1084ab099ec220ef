package harness

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/meshtls/meshtls/mesh"
)

// New starts a mesh for a test and removes it when the test ends, like
// httptest.NewServer. It fails the test with the fix when Docker or Envoy is
// missing; with -short it skips instead (a quick local loop).
func New(t testing.TB, m *mesh.Mesh, opt ...Option) *Runtime {
	t.Helper()
	if testing.Short() {
		t.Skip("live test: needs Docker and Envoy (run without -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append([]Option{WithLogf(t.Logf)}, opt...)
	if os.Getenv("MESHTLS_KEEP") == "" {
		opts = append(opts, WithArtifacts(t.ArtifactDir()))
	}
	rt, err := Start(ctx, m, opts...)
	if err != nil {
		t.Fatalf("starting the mesh: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rt
}
