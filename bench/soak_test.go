package bench

import (
	"context"
	"testing"
	"time"
)

// The soak of `make bench` as a live test, so `make test` holds its bounds:
// 1,000 sequential checks and 50 pushes on one mesh, and the control
// plane's goroutines, file descriptors and heap grow no more than
// SoakMax*, and nothing of the run is left (Soak's doc says what it does).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("live test: needs Docker and Envoy (run without -short)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	f, err := Soak(ctx, 1000, 50, t.Logf)
	if err != nil {
		t.Fatalf("the soak stopped: %v", err)
	}
	t.Logf("%d checks and %d pushes in %.1fs: goroutines %d -> %d, fds %d -> %d, heap in use %d -> %d KiB",
		f.Checks, f.Pushes, f.Duration.Seconds(), f.GoroutinesBefore, f.GoroutinesAfter,
		f.FDsBefore, f.FDsAfter, f.HeapBefore>>10, f.HeapAfter>>10)
	if f.Checks != 1000 || f.Pushes != 50 {
		t.Errorf("the soak made %d checks and %d pushes, want 1000 and 50", f.Checks, f.Pushes)
	}
	for _, l := range f.Leaks() {
		t.Error(l)
	}
}
