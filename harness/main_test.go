package harness

import (
	"os"
	"testing"
)

// TestMain turns testcontainers' reaper off for these tests (the harness
// removes what it creates; no registry is needed).
func TestMain(m *testing.M) {
	NoReaper()
	os.Exit(m.Run())
}
