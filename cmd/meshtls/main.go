// Command meshtls runs Istio-style TLS bundles on real Envoy proxies
// (run), checks them without Docker (validate) and prints the Envoy config a
// proxy would get (translate). Exit status: 0 every expectation held, 1 one
// did not, 2 bad input or a set-up failure.
package main

import (
	"os"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/meshtls/meshtls/harness"
)

func main() {
	// The process's choices, not the library's: meshtls removes what it
	// creates itself, so testcontainers' reaper is off, and testcontainers'
	// own lines (a banner per process) only with MESHTLS_DEBUG.
	harness.NoReaper()
	if os.Getenv("MESHTLS_DEBUG") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
