// Command meshtls-oracle runs Istio's own config generator on a request
// written by meshtls (JSON on stdin, see package istiod) and prints the
// Envoy resources istiod would send each proxy (JSON on stdout).
//
// Users do not call it directly: `meshtls oracle` (the main module's CLI)
// writes the request from a bundle, runs this program and diffs the answer
// against meshtls's own translation.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/meshtls/meshtls/oracle/istiod"
)

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "version" {
			fmt.Println(istiod.IstioVersion)
			return
		}
		fmt.Fprintln(os.Stderr, "usage: meshtls-oracle < request.json > response.json (written and read by `meshtls oracle`)")
		os.Exit(2)
	}
	var req istiod.Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "meshtls-oracle: read request from stdin:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(istiod.Generate(&req)); err != nil {
		fmt.Fprintln(os.Stderr, "meshtls-oracle: write response:", err)
		os.Exit(2)
	}
}
