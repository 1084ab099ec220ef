package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/meshtls/meshtls/mesh"
)

// Inputs fingerprints what each proxy's translation reads from one mesh, so
// that after a change only the proxies whose inputs changed are translated
// again (as istiod pushes only the proxies a config change affects,
// pilot/pkg/xds/proxy_dependencies.go ConfigAffectsProxy). Equal keys for a
// proxy in two meshes mean Translate gives it the same resources (with the
// same Env).
//
// The key is coarse where that is safe and exact where one proxy is the
// point: any change to workloads, Services, DestinationRules, Gateways,
// VirtualServices, ServiceEntries, Sidecars, Secrets or Namespaces changes every key;
// PeerAuthentication enters only through the answers translation asks of it:
// the proxy's own decision per inbound port (inbound.go), whether another
// workload's port is DISABLE (endpoint metadata under auto mTLS, cluster.go)
// and each namespace's mode (cluster.go serviceMTLS). So a
// PeerAuthentication that selects one workload and does not cross DISABLE
// changes that workload's key alone.
type Inputs struct {
	m      *mesh.Mesh
	common string
}

// NewInputs computes the part of every key the proxies share.
func NewInputs(m *mesh.Mesh) (*Inputs, error) {
	// Not here: checks, loading's messages and where documents came from
	// (translation never reads them); PeerAuthentication enters below
	// through its answers.
	b, err := json.Marshal(struct {
		Workloads, Services, DestinationRules, Gateways, VirtualServices, ServiceEntries, Sidecars, Secrets, Namespaces any
	}{m.Workloads, m.Services, m.DestinationRules, m.Gateways, m.VirtualServices, m.ServiceEntries, m.Sidecars, m.Secrets, m.Namespaces})
	if err != nil {
		return nil, fmt.Errorf("fingerprinting the mesh: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(withoutSources(v)); err != nil {
		return nil, err
	}
	// Answers from PeerAuthentication every proxy may read.
	namespaces := map[string]bool{m.Root(): true}
	for _, w := range m.Workloads {
		namespaces[w.Namespace] = true
		fmt.Fprintf(h, "disable %s:", w.ID())
		for _, p := range paPorts(m, w) {
			fmt.Fprintf(h, " %d=%t", p, m.EffectiveMTLS(w, p) == mesh.ModeDisable)
		}
		h.Write([]byte{'\n'})
	}
	for _, s := range m.Services {
		namespaces[s.Namespace] = true
	}
	for _, se := range m.ServiceEntries {
		namespaces[se.Namespace] = true
	}
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		fmt.Fprintf(h, "namespace %s: %s\n", ns, m.NamespaceMTLS(ns))
	}
	return &Inputs{m: m, common: hex.EncodeToString(h.Sum(nil))}, nil
}

// Key is proxy's fingerprint: the shared part and its own inbound decisions.
func (in *Inputs) Key(proxy *mesh.Workload) string {
	var b strings.Builder
	b.WriteString(in.common)
	// The ports whose decision the translation records: the declared
	// ports and the undeclared ones a port-level setting names (their own
	// passthrough chains, inbound.go).
	ports := append([]uint32{0}, portNumbers(proxy)...)
	for _, p := range in.m.InboundPorts(proxy) {
		ports = append(ports, p.Port)
	}
	ports = append(ports, in.m.PortLevelMTLSPorts(proxy)...)
	slices.Sort(ports)
	for _, p := range slices.Compact(ports) {
		_, by := in.m.PeerAuthDecision(proxy, p)
		fmt.Fprintf(&b, "\n%d %s", p, by)
	}
	return b.String()
}

func portNumbers(w *mesh.Workload) []uint32 {
	var out []uint32
	for _, p := range w.Ports {
		out = append(out, p.Port)
	}
	return out
}

// paPorts are the ports whose PeerAuthentication answer can differ for w:
// the workload level (0), its ports, and every port a port-level setting of
// any PeerAuthentication names (any other port answers as port 0 does).
func paPorts(m *mesh.Mesh, w *mesh.Workload) []uint32 {
	set := map[uint32]bool{0: true}
	for _, p := range portNumbers(w) {
		set[p] = true
	}
	for _, pa := range m.PeerAuthentications {
		for p := range pa.Spec.GetPortLevelMtls() {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// withoutSources drops the Source fields (where a document came from) of a
// decoded JSON value: the same config loaded from another file translates
// alike.
func withoutSources(v any) any {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "Source")
		for k, e := range t {
			t[k] = withoutSources(e)
		}
	case []any:
		for i, e := range t {
			t[i] = withoutSources(e)
		}
	}
	return v
}
