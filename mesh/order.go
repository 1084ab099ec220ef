package mesh

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configCompare is Istio's order of same-kind resources: oldest
// metadata.creationTimestamp first, then name, then namespace (timestamps
// have one-second precision, so ties are common: everything applied by one
// `kubectl apply` usually shares one). A missing timestamp is the zero time,
// older than any given one.
// Source: pilot/pkg/model/config.go (configCompareByCreationTime).
func configCompare(a, b metav1.Object) int {
	if r := a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time); r != 0 {
		return r
	}
	if r := strings.Compare(a.GetName(), b.GetName()); r != 0 {
		return r
	}
	return strings.Compare(a.GetNamespace(), b.GetNamespace())
}

// sortIstio sorts objects into Istio's order; the mesh keeps its Istio
// resources in that order, so "the first that matches" in any question is
// the one Istio picks (the oldest PeerAuthentication at a level, the first
// DestinationRule merged for a host, the oldest Gateway claiming a server).
func sortIstio[T metav1.Object](objs []T) {
	slices.SortStableFunc(objs, func(a, b T) int { return configCompare(a, b) })
}

// sortByIstioOrder puts every Istio kind whose order decides an outcome into
// Istio's order. Sources: pilot/pkg/model/authentication.go
// (addPeerAuthentication), push_context.go (setDestinationRules, initGateways),
// virtualservice_controller.go (sortMergedVirtualServicesByCreationTime),
// initSidecarScopes (sortConfigByCreationTime).
func (m *Mesh) sortByIstioOrder() {
	sortIstio(m.PeerAuthentications)
	sortIstio(m.DestinationRules)
	sortIstio(m.Gateways)
	sortIstio(m.VirtualServices)
	sortIstio(m.Sidecars)
}
