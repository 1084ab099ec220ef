package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuSample is CPU seconds (user + system, with reaped children) of the
// processes that start a mesh: the engine (dockerd, containerd: shared with
// whoever else uses it), each container's shim (with the runc it ran and
// reaped), the processes inside the run's containers by program, and this
// process (the control plane).
type cpuSample = map[string]float64

// procCPU reads /proc/pid/stat: comm and utime+stime+cutime+cstime seconds.
func procCPU(pid string) (comm string, secs float64, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return "", 0, false
	}
	comm = s[i+1 : j]
	f := strings.Fields(s[j+2:])
	// Fields after comm: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return "", 0, false
	}
	var t float64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseFloat(f[k], 64)
		t += v
	}
	return comm, t / clockTicks, true
}

// sampleCPU attributes every process's CPU time: the run's containers'
// processes are recognised by their cgroup (…/docker/<id>), shims by the
// container id in their command line.
func sampleCPU(ids map[string]bool) cpuSample {
	out := cpuSample{}
	self := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		comm, secs, ok := procCPU(pid)
		if !ok {
			continue
		}
		switch {
		case pid == self:
			out["control plane (this process)"] += secs
		case comm == "dockerd" || comm == "containerd":
			out["engine: "+comm] += secs
		case strings.HasPrefix(comm, "containerd-shim"):
			cmd, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
			for _, a := range strings.Split(string(cmd), "\x00") {
				if ids[a] {
					out["shims (+runc)"] += secs
					break
				}
			}
		default:
			cg, _ := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
			if i := strings.Index(string(cg), "/docker/"); i >= 0 {
				id := string(cg[i+8:])
				if k := strings.IndexByte(id, '\n'); k >= 0 {
					id = id[:k]
				}
				if ids[id] {
					out["in containers: "+comm] += secs
				}
			}
		}
	}
	return out
}

// subCPU is a - b per key (keys of a).
func subCPU(a, b cpuSample) cpuSample {
	out := cpuSample{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}
