package main

import (
	"os"
	"testing"

	"github.com/meshtls/meshtls/harness"
)

// TestMain turns testcontainers' reaper off for these tests (the harness
// removes what it creates; no registry is needed).
func TestMain(m *testing.M) {
	harness.NoReaper()
	os.Exit(m.Run())
}
