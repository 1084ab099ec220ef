package harness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

// Scenario is one bundle file: its workloads, Istio config and checks.
type Scenario struct {
	Name string // the file's base name without extension
	File string
	Mesh *mesh.Mesh
}

// LoadScenarios loads each bundle as one scenario (see mesh.Bundles: a
// directory's files are one scenario each, its subdirectories one each).
// Every bundle is validated before any container starts, translation
// included; all problems are returned together.
func LoadScenarios(paths ...string) ([]Scenario, error) {
	files, err := mesh.Bundles(paths...)
	if err != nil {
		return nil, err
	}
	var out []Scenario
	var errs []error
	for _, f := range files {
		s, err := LoadScenario(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// RunOptions tune RunScenarios.
type RunOptions struct {
	// Parallel checks within a scenario (default 4). Checks are independent:
	// each one's evidence is matched by its own connections.
	Parallel int
	// Progress, when set, is called after each check.
	Progress func(*trace.Result)
	// Artifacts, when set, is where evidence of failed checks is saved.
	Artifacts string
	// Keep leaves a mesh running when one of its checks failed (the CLI sets
	// it from MESHTLS_KEEP) and hands OnKeep the message that says how to
	// reach each proxy's admin API and how to remove the mesh.
	Keep   bool
	OnKeep func(msg string)
}

// RunScenarios runs scenarios, sharing pods between scenarios that declare
// the same workloads (between them only the Istio config is pushed), and
// returns every check's result in order.
func RunScenarios(ctx context.Context, scs []Scenario, ro RunOptions, opt ...Option) ([]*trace.Result, error) {
	if ro.Parallel <= 0 {
		ro.Parallel = 4
	}
	// Group by workload set, keeping the order of first appearance.
	var keys []string
	groups := map[string][]Scenario{}
	for _, s := range scs {
		k := workloadKey(s.Mesh)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], s)
	}
	results := make(map[string][]*trace.Result, len(scs))
	for _, k := range keys {
		if err := runGroup(ctx, groups[k], ro, results, opt); err != nil {
			return nil, err
		}
	}
	var out []*trace.Result
	for _, s := range scs {
		out = append(out, results[s.File]...)
	}
	return out, nil
}

func runGroup(ctx context.Context, scs []Scenario, ro RunOptions, results map[string][]*trace.Result, opt []Option) error {
	rt, err := Start(ctx, scs[0].Mesh, opt...)
	if err != nil {
		return fmt.Errorf("scenario %s: %w", scs[0].Name, err)
	}
	failed := false
	defer func() {
		if ro.Keep && failed && ctx.Err() == nil {
			if ro.OnKeep != nil {
				ro.OnKeep(fmt.Sprintf("%s\n  it holds the config of scenario %s (the last of the scenarios sharing its pods; run a failing file alone to keep its config)", rt.KeepMessage(), scs[len(scs)-1].Name))
			}
			return
		}
		rt.Close()
	}()
	for i, s := range scs {
		if i > 0 {
			if err := rt.Apply(ctx, s.Mesh); err != nil {
				return fmt.Errorf("scenario %s: %w", s.Name, err)
			}
		}
		res, err := rt.RunChecks(ctx, s, ro.Parallel, ro.Progress)
		if err != nil {
			return err
		}
		for _, r := range res {
			failed = failed || r.Verdict == outcome.Fail
		}
		if ro.Artifacts != "" {
			for _, r := range res {
				if r.Verdict == outcome.Fail {
					dir, err := rt.SaveArtifacts(ctx, filepath.Join(ro.Artifacts, s.Name))
					if err != nil {
						return err
					}
					r.Artifacts = dir
					break
				}
			}
		}
		results[s.File] = res
	}
	return nil
}

// RunChecks runs every check of s on the running mesh, parallel at once
// (at least 1), and returns the results in the checks' order; progress,
// when set, is called after each check.
func (r *Runtime) RunChecks(ctx context.Context, s Scenario, parallel int, progress func(*trace.Result)) ([]*trace.Result, error) {
	res := make([]*trace.Result, len(s.Mesh.Checks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for j, c := range s.Mesh.Checks {
		g.Go(func() error {
			out, err := r.Run(gctx, s.Name, c)
			if err != nil {
				return err
			}
			res[j] = out
			if progress != nil {
				progress(out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return res, nil
}

// SameWorkloads reports whether two meshes run the same pods, so that one
// runtime serves both (only the Istio config is pushed between them).
func SameWorkloads(a, b *mesh.Mesh) bool { return workloadKey(a) == workloadKey(b) }

func workloadKey(m *mesh.Mesh) string {
	var ids []string
	for _, w := range m.Workloads {
		ids = append(ids, fmt.Sprintf("%s|%v|%v|%v|%v|%s|%v|%v|%v", w.ID(), w.Sidecar, w.Gateway, w.External, w.Ports, w.ServiceAccount, w.Hostnames, w.Labels, captureArgs(w.Capture)))
	}
	sort.Strings(ids)
	return strings.Join(ids, "\n")
}
