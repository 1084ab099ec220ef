package pod

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// execWithoutNetAdmin runs args (another meshtls-pod subcommand, the agent)
// in place of this process without CAP_NET_ADMIN: the pod's first container
// does the capture init's work and then runs the app as Istio's app
// container does, without the capability only istio-init holds. The
// capability leaves the bounding set (so no exec can regain it), the
// inheritable and ambient sets, and this thread's effective and permitted
// sets; capabilities are per thread, and execve keeps the calling thread's.
func execWithoutNetAdmin(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// argv[0] stays meshtls-pod: the binary dispatches on it (harness/podrole.go).
	return execDropping(exe, append([]string{os.Args[0]}, args...))
}

// execDropping execs path with argv without CAP_NET_ADMIN.
func execDropping(path string, argv []string) error {
	runtime.LockOSThread() // never unlocked: this thread execs
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_NET_ADMIN, 0, 0, 0); err != nil {
		return fmt.Errorf("dropping CAP_NET_ADMIN from the bounding set: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // 64 capability bits in two words
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	const bit = uint32(1) << unix.CAP_NET_ADMIN // 12: the first word
	data[0].Effective &^= bit
	data[0].Permitted &^= bit
	data[0].Inheritable &^= bit
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("dropping CAP_NET_ADMIN: %w", err)
	}
	return unix.Exec(path, argv, os.Environ())
}
