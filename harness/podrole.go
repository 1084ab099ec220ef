package harness

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshtls/meshtls/pod"
)

// Every binary that imports the harness (meshtls, a test binary) is also the
// in-pod program: the pod image holds it as /meshtls-pod, and started under
// that name it runs pod.Main instead of its own main. So a copied or
// `go install`ed meshtls, or a test in another module, needs no other file.
func init() {
	if filepath.Base(os.Args[0]) != pod.Exe {
		return
	}
	if err := pod.Main(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, pod.Exe+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}
