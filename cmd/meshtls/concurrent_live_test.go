package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Two `meshtls run` at once on one engine do not interfere: each starts
// its mesh (its own names, network and address plan), neither's sweep
// takes the other's live run, both report the same verdicts as a run
// alone, and both leave nothing behind.
func TestTwoRunsAtOnce(t *testing.T) {
	live(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("this test lists containers with the docker CLI: install docker.io (make setup)")
	}
	bin := filepath.Join(t.TempDir(), "meshtls")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	type result struct {
		pid      int
		code     int
		out, err bytes.Buffer
	}
	runs := make([]*result, 2)
	cmds := make([]*exec.Cmd, 2)
	for i := range runs {
		runs[i] = &result{}
		cmds[i] = exec.Command(bin, "run", "-o", "json", "testdata/two-pods.yaml")
		cmds[i].Stdout, cmds[i].Stderr = &runs[i].out, &runs[i].err
	}
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i].pid = cmd.Process.Pid
	}
	for i, cmd := range cmds {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run %d: %v", i, err)
		}
		runs[i].code = cmd.ProcessState.ExitCode()
	}
	for i, r := range runs {
		// two-pods.yaml has one expectation that is deliberately wrong.
		if r.code != 1 {
			t.Errorf("run %d: exit %d, want 1\nstderr:\n%s", i, r.code, r.err.String())
			continue
		}
		var got jsonOutput
		if err := json.Unmarshal(r.out.Bytes(), &got); err != nil {
			t.Errorf("run %d: stdout is not the JSON object: %v\n%s", i, err, r.out.String())
			continue
		}
		if s := got.Summary; s.Total != 3 || s.Passed != 1 || s.Failed != 1 || s.Reported != 1 {
			t.Errorf("run %d: summary %+v, want the verdicts of a run alone (3 checks: 1 passed, 1 failed, 1 reported)\nstderr:\n%s", i, s, r.err.String())
		}
		// Everything a run creates carries its process's pid.
		mine := "label=dev.meshtls.pid=" + strconv.Itoa(r.pid)
		if ids := dockerIDs(t, "ps", "-aq", "--filter", mine); len(ids) > 0 {
			t.Errorf("run %d left containers %v", i, ids)
		}
		if ids := dockerIDs(t, "network", "ls", "-q", "--filter", mine); len(ids) > 0 {
			t.Errorf("run %d left networks %v", i, ids)
		}
	}
}
