// Command meshtls runs Istio-style TLS bundles on real Envoy proxies
// (run), checks them without Docker (validate) and prints the Envoy config a
// proxy would get (translate). Exit status: 0 every expectation held, 1 one
// did not, 2 bad input or a set-up failure.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
