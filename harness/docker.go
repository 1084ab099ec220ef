package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Labels on everything a run creates, so cleanup finds it by label, and a
// later run can remove what a dead run left behind.
const (
	labelRun   = "dev.meshtls.run"  // run id
	labelPID   = "dev.meshtls.pid"  // pid of the process that owns the run
	labelHost  = "dev.meshtls.host" // hostname of that process
	labelRole  = "dev.meshtls.role" // agent, init, envoy, network
	labelPod   = "dev.meshtls.pod"  // workload id
	labelImage = "dev.meshtls.image"
)

// dockerClient connects to the engine the Docker client finds (DOCKER_HOST,
// contexts), failing with the fix when none answers.
func dockerClient(ctx context.Context) (*client.Client, error) {
	if err := checkReaper(ctx); err != nil {
		return nil, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err == nil {
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	}
	if err != nil {
		return nil, fmt.Errorf("no Docker engine answers (%v): run `make setup` (installs and starts Debian's docker.io when needed), start Docker Desktop, or set DOCKER_HOST", err)
	}
	return cli.Client, nil
}

func runLabels(runID string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		labelRun:  runID,
		labelPID:  strconv.Itoa(os.Getpid()),
		labelHost: host,
	}
}

// containerLogger is what testcontainers says about each container the
// run creates: progress is ours to report (WithLogf), so its lines are
// dropped unless MESHTLS_DEBUG is set. Per container: the process's own
// testcontainers logger is left alone.
func (r *Runtime) containerLogger() tclog.Logger {
	if os.Getenv("MESHTLS_DEBUG") == "" {
		return tclog.NewNoopLogger()
	}
	return logfLogger(r.opts.logf)
}

type logfLogger func(string, ...any)

func (f logfLogger) Printf(format string, v ...any) { f("testcontainers: "+format, v...) }

func (r *Runtime) labels(role, podID string) map[string]string {
	l := runLabels(r.RunID)
	l[labelRole] = role
	if podID != "" {
		l[labelPod] = podID
	}
	return l
}

// sweepDeadRuns removes what runs of dead processes on this host left behind.
func sweepDeadRuns(ctx context.Context, cli *client.Client, logf func(string, ...any)) error {
	// Processes that start at once (parallel test packages, two meshtls
	// runs) would otherwise remove the same dead run together and fail on
	// each other ("removal already in progress", a network still in use).
	unlock, err := lockFile(filepath.Join(cacheDir(), "sweep.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	host, _ := os.Hostname()
	dead := map[string]bool{}
	consider := func(labels map[string]string) {
		run := labels[labelRun]
		if run == "" || labels[labelHost] != host || dead[run] {
			return
		}
		pid, err := strconv.Atoi(labels[labelPID])
		if err != nil || !processAlive(pid) {
			dead[run] = true
		}
	}
	f := client.Filters{}.Add("label", labelRun)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	for _, c := range cs.Items {
		consider(c.Labels)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return err
	}
	for _, n := range ns.Items {
		consider(n.Labels)
	}
	var errs []error
	for run := range dead {
		logf("removing leftovers of dead run %s", run)
		errs = append(errs, removeRun(ctx, cli, run), removeRunDirs(run))
	}
	return quietStale(errors.Join(errs...))
}

var runIDPattern = regexp.MustCompile(`^[0-9a-f]{8}$`)

// removeRunDirs removes the host directories of a dead run (sockets,
// bootstraps, 0600 keys) that Start made as $TMPDIR/meshtls-<run>-*.
// Run ids come from labels anyone can set: only ours (8 hex digits) are
// turned into a path.
func removeRunDirs(runID string) error {
	if !runIDPattern.MatchString(runID) {
		return nil
	}
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "meshtls-"+runID+"-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("removing the dead run's directory %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}
