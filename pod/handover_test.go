package pod

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const handoverChildEnv = "MESHTLS_POD_HANDOVER_CHILD"

// capSets reads the Cap* lines of a /proc/<pid>/status text.
func capSets(t *testing.T, status string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		out[k] = n
	}
	return out
}

// The program that follows the init runs without CAP_NET_ADMIN in any set,
// and keeps the capabilities it had otherwise (CAP_NET_RAW: the agent's
// packet capture). This test binary, re-executed, drops and execs cat,
// which prints its own capability sets.
func TestExecWithoutNetAdmin(t *testing.T) {
	if os.Getenv(handoverChildEnv) != "" {
		err := execDropping("/bin/cat", []string{"cat", "/proc/self/status"})
		t.Fatalf("exec: %v", err) // only reached when the exec failed
	}
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	before := capSets(t, string(self))
	const netAdmin = uint64(1) << unix.CAP_NET_ADMIN
	const netRaw = uint64(1) << unix.CAP_NET_RAW
	if before["CapEff"]&netAdmin == 0 {
		t.Skip("needs CAP_NET_ADMIN (root in a container or on the host) to show it dropped")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecWithoutNetAdmin$")
	cmd.Env = append(os.Environ(), handoverChildEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	after := capSets(t, string(out))
	if len(after) == 0 {
		t.Fatalf("the child printed no capability sets:\n%s", out)
	}
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if after[set]&netAdmin != 0 {
			t.Errorf("%s = %x still holds CAP_NET_ADMIN", set, after[set])
		}
	}
	for _, set := range []string{"CapPrm", "CapEff", "CapBnd"} {
		if before[set]&netRaw != 0 && after[set]&netRaw == 0 {
			t.Errorf("%s lost CAP_NET_RAW (%x -> %x): only CAP_NET_ADMIN goes", set, before[set], after[set])
		}
	}
}
