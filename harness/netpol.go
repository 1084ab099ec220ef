package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"golang.org/x/sync/errgroup"

	"github.com/meshtls/meshtls/pod"
)

// netPolicyFile is a pod's NetworkPolicy filter (pod.NetPolicy JSON), in
// its pod dir.
const netPolicyFile = "netpol.json"

// writeNetPolicy writes what the mesh's NetworkPolicies allow p when it
// differs from what p's filter holds (p.netpol), and returns it; "" when
// nothing changed (a policy that isolates nothing, in a pod that never had
// a filter, changes nothing).
func (r *Runtime) writeNetPolicy(p *Pod) (string, error) {
	np := r.mesh.NetPolicy(p.W, r.addrs)
	b, err := json.MarshalIndent(np, "", "  ")
	if err != nil {
		return "", err
	}
	if string(b) == p.netpol || (p.netpol == "" && !np.Isolated()) {
		return "", nil
	}
	if err := os.WriteFile(filepath.Join(p.Dir, netPolicyFile), b, 0o644); err != nil {
		return "", err
	}
	return string(b), nil
}

// netPolicyArgs are the init flags that program p's NetworkPolicy filter
// before its app and proxy run; none when no policy isolates it.
func (r *Runtime) netPolicyArgs(p *Pod) ([]string, error) {
	np, err := r.writeNetPolicy(p)
	if err != nil || np == "" {
		return nil, err
	}
	p.netpol = np
	return []string{"--netpol", pod.RunDir + "/" + netPolicyFile}, nil
}

// applyNetPolicies reprograms the filter of every pod whose allowed
// traffic changed with the mesh's NetworkPolicies (Apply): the filter is
// replaced whole in one transaction. The program runs in the pod's agent
// container, with the CAP_NET_ADMIN its init dropped for the app (as a
// network plugin programs the pod from the node); the app itself never
// holds it. Connections already open stay up, as
// conntrack keeps them in a cluster. The caller holds pushMu.
func (r *Runtime) applyNetPolicies(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(podStartsPerCPU * 2)
	for _, p := range r.pods {
		np, err := r.writeNetPolicy(p)
		if err != nil {
			_ = g.Wait()
			return err
		}
		if np == "" || p.agent == nil {
			continue
		}
		g.Go(func() error {
			cmd := []string{"/" + pod.Exe, "netpol", "--file", pod.RunDir + "/" + netPolicyFile}
			code, out, err := p.agent.Exec(gctx, cmd, tcexec.Multiplexed())
			if err != nil {
				return fmt.Errorf("programming the network policy of %s: %w", p.W.ID(), err)
			}
			if code != 0 {
				said, _ := io.ReadAll(out)
				return fmt.Errorf("programming the network policy of %s: exit %d: %s", p.W.ID(), code, strings.TrimSpace(string(said)))
			}
			p.netpol = np
			return nil
		})
	}
	return g.Wait()
}
