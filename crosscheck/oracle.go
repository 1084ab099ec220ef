// Package crosscheck compares meshtls's translation with Istio's own: it
// writes a bundle as the cluster state istiod would see, runs Istio's
// config generator on it (the meshtls-oracle program of the oracle/ module,
// kept out of this module's dependencies), reduces both configs to what
// decides TLS (a skeleton, and a simulation of which filter chain each kind
// of connection lands on), and diffs them against an allowlist of
// deliberate deviations (docs/oracle.md).
package crosscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// OracleBinary is the program's name; FindOracle looks for it.
const OracleBinary = "meshtls-oracle"

// BuildHint is the command that builds the oracle, for error messages.
const BuildHint = "make oracle-build (or: cd oracle && go build -o ../bin/meshtls-oracle ./cmd/meshtls-oracle)"

// FindOracle returns the oracle program: $MESHTLS_ORACLE, else
// meshtls-oracle beside the running executable, in ./bin, or on PATH.
func FindOracle() (string, error) {
	if p := os.Getenv("MESHTLS_ORACLE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MESHTLS_ORACLE=%s: %w: build the Istio oracle there (%s) or unset MESHTLS_ORACLE", p, err, BuildHint)
		}
		return p, nil
	}
	var cands []string
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), OracleBinary))
	}
	cands = append(cands, filepath.Join("bin", OracleBinary))
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return filepath.Abs(c)
		}
	}
	if p, err := exec.LookPath(OracleBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the Istio oracle (%s) is not built: %s; or set MESHTLS_ORACLE to its path", OracleBinary, BuildHint)
}

// Bundle is one scenario file loaded for comparison.
type Bundle struct {
	Name  string // file path
	Mesh  *mesh.Mesh
	Addrs map[string]netip.Addr
}

// LoadBundle loads one scenario file with the address plan `translate`
// uses: 10.88.0.0 in a network as wide as a run's (mesh.PlanBits), so a
// mesh too big for a /24 still gives every Service a cluster IP.
func LoadBundle(path string) (*Bundle, error) {
	m, err := mesh.Load(path)
	if err != nil {
		return nil, err
	}
	prefix := netip.PrefixFrom(netip.MustParseAddr("10.88.0.0"), m.PlanBits()).Masked()
	return &Bundle{Name: path, Mesh: m, Addrs: m.AddressPlan(prefix)}, nil
}

// IstioConfig is istiod's config for each proxy of a bundle (by workload ID).
type IstioConfig struct {
	Proxies map[string]*translate.Resources
	Notes   []string // substitutions the oracle applied
}

// Generate runs the oracle once for all bundles; the answer is in order.
func Generate(ctx context.Context, oracle string, bundles []*Bundle) (version string, out []*IstioConfig, err error) {
	var req oracleRequest
	for _, b := range bundles {
		c, err := exportCase(b.Name, b.Mesh, b.Addrs)
		if err != nil {
			return "", nil, err
		}
		req.Cases = append(req.Cases, c)
	}
	in, err := json.Marshal(req)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, oracle)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("%s: %w\n%s", oracle, err, strings.TrimSpace(stderr.String()))
	}
	var resp oracleResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return "", nil, fmt.Errorf("%s: read its answer: %w", oracle, err)
	}
	if len(resp.Cases) != len(bundles) {
		return "", nil, fmt.Errorf("%s: %d answers for %d bundles", oracle, len(resp.Cases), len(bundles))
	}
	var errs []error
	for _, r := range resp.Cases {
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("istiod on %s: %s", r.Name, r.Error))
			out = append(out, nil)
			continue
		}
		ic := &IstioConfig{Proxies: map[string]*translate.Resources{}, Notes: r.Notes}
		for _, p := range r.Proxies {
			res, err := decode(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("istiod on %s, proxy %s: %w", r.Name, p.ID, err))
				continue
			}
			ic.Proxies[p.ID] = res
		}
		out = append(out, ic)
	}
	return resp.IstioVersion, out, errors.Join(errs...)
}

func decode(p oracleProxyConfig) (*translate.Resources, error) {
	res := &translate.Resources{}
	var err error
	res.Listeners, err = decodeAll[listener.Listener](p.Listeners)
	if err != nil {
		return nil, err
	}
	res.Clusters, err = decodeAll[cluster.Cluster](p.Clusters)
	if err != nil {
		return nil, err
	}
	res.Routes, err = decodeAll[route.RouteConfiguration](p.Routes)
	if err != nil {
		return nil, err
	}
	res.Endpoints, err = decodeAll[endpoint.ClusterLoadAssignment](p.Endpoints)
	return res, err
}

func decodeAll[T any, P interface {
	*T
	proto.Message
}](in [][]byte) ([]*T, error) {
	out := make([]*T, 0, len(in))
	for _, b := range in {
		m := P(new(T))
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, err
		}
		out = append(out, (*T)(m))
	}
	return out, nil
}
