package mesh

import (
	"fmt"
	"maps"
	"slices"

	securityapi "istio.io/api/security/v1beta1"
	security "istio.io/client-go/pkg/apis/security/v1"
)

// PeerAuthentication: the mTLS mode a server sidecar enforces on a port
// (pilot/pkg/security/authn, pilot/pkg/model/authentication.go).

// MTLSMode is an effective PeerAuthentication mode.
type MTLSMode string

const (
	ModeStrict     MTLSMode = "STRICT"
	ModePermissive MTLSMode = "PERMISSIVE"
	ModeDisable    MTLSMode = "DISABLE"
)

func paMode(mt *securityapi.PeerAuthentication_MutualTLS) (MTLSMode, bool) {
	switch mt.GetMode() {
	case securityapi.PeerAuthentication_MutualTLS_STRICT:
		return ModeStrict, true
	case securityapi.PeerAuthentication_MutualTLS_PERMISSIVE:
		return ModePermissive, true
	case securityapi.PeerAuthentication_MutualTLS_DISABLE:
		return ModeDisable, true
	}
	return "", false // nil or UNSET: inherit from the parent
}

func hasSelector(pa *security.PeerAuthentication) bool {
	return len(pa.Spec.GetSelector().GetMatchLabels()) > 0
}

// meshAndNamespacePolicies picks the mesh-level (root namespace, no selector)
// and namespace-level (ns, no selector) policies. When several exist at one
// level Istio keeps the oldest; the mesh holds them in Istio's order
// (order.go), so that is the first.
// Source: pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication).
func (m *Mesh) meshAndNamespacePolicies(ns string) (meshPA, nsPA *security.PeerAuthentication) {
	for _, pa := range m.PeerAuthentications {
		if hasSelector(pa) {
			continue
		}
		if pa.Namespace == m.Root() {
			if meshPA == nil {
				meshPA = pa
			}
		} else if pa.Namespace == ns && nsPA == nil {
			nsPA = pa
		}
	}
	return meshPA, nsPA
}

// EffectiveMTLS is the PeerAuthentication mode for a workload's port:
// port-level > workload selector > namespace > mesh (root ns) > PERMISSIVE; UNSET inherits.
// port is the workload (container) port, as portLevelMtls keys are.
// Source: pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication)
// and pilot/pkg/model/authentication.go (getConfigsForWorkload). Selector
// policies in the root namespace are dropped by ComposePeerAuthentication
// ("Workload-level policy, aka the one with selector and not in root
// namespace"), so they never apply, not even to root-namespace workloads.
func (m *Mesh) EffectiveMTLS(w *Workload, port uint32) MTLSMode {
	mode, _ := m.PeerAuthDecision(w, port)
	return mode
}

// PeerAuthDecision is EffectiveMTLS and the PeerAuthentication that decided
// it, with its level: "ns/name (port 8080): STRICT", "ns/name (workload)",
// "ns/name (namespace)", "istio-system/name (mesh)", or Istio's default.
func (m *Mesh) PeerAuthDecision(w *Workload, port uint32) (MTLSMode, string) {
	mode, by := m.namespaceMTLS(w.Namespace)
	if wl := m.workloadPA(w); wl != nil {
		if md, ok := paMode(wl.Spec.GetMtls()); ok {
			mode, by = md, wl.Namespace+"/"+wl.Name+" (workload)"
		}
		if pm, ok := wl.Spec.GetPortLevelMtls()[port]; ok {
			if md, ok := paMode(pm); ok {
				mode, by = md, fmt.Sprintf("%s/%s (port %d)", wl.Namespace, wl.Name, port)
			}
		}
	}
	return mode, by + ": " + string(mode)
}

// workloadPA is the PeerAuthentication with a selector that applies to w:
// the oldest in its namespace (Istio's order, order.go).
func (m *Mesh) workloadPA(w *Workload) *security.PeerAuthentication {
	for _, pa := range m.PeerAuthentications {
		if pa.Namespace == w.Namespace && pa.Namespace != m.Root() && hasSelector(pa) &&
			labelsMatch(pa.Spec.GetSelector().GetMatchLabels(), w.Labels) {
			return pa
		}
	}
	return nil
}

// PortLevelMTLSPorts are the ports w's workload PeerAuthentication sets a
// mode for (portLevelMtls), sorted. Istio gives each such port that no
// Service declares passthrough chains of its own under that mode
// (pilot/pkg/networking/plugin/authn/authentication.go, ForPassthrough,
// needPerPortPassthroughFilterChain).
func (m *Mesh) PortLevelMTLSPorts(w *Workload) []uint32 {
	wl := m.workloadPA(w)
	if wl == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(wl.Spec.GetPortLevelMtls()))
}

// NamespaceMTLS is the mode from mesh- and namespace-level policy only, the
// one Istio infers for a whole service under auto mTLS.
// Source: pilot/pkg/model/authentication.go (GetNamespaceMutualTLSMode) and
// pilot/pkg/model/push_context.go (BestEffortInferServiceMTLSMode).
func (m *Mesh) NamespaceMTLS(ns string) MTLSMode {
	mode, _ := m.namespaceMTLS(ns)
	return mode
}

func (m *Mesh) namespaceMTLS(ns string) (MTLSMode, string) {
	mode, by := ModePermissive, "no PeerAuthentication (Istio's default)"
	meshPA, nsPA := m.meshAndNamespacePolicies(ns)
	if meshPA != nil {
		if md, ok := paMode(meshPA.Spec.GetMtls()); ok {
			mode, by = md, meshPA.Namespace+"/"+meshPA.Name+" (mesh)"
		}
	}
	if nsPA != nil {
		if md, ok := paMode(nsPA.Spec.GetMtls()); ok {
			mode, by = md, nsPA.Namespace+"/"+nsPA.Name+" (namespace)"
		}
	}
	return mode, by
}
