package mesh

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshtls/meshtls/pod"
)

// Kubernetes NetworkPolicy (networking.k8s.io/v1), as kubernetes.io
// defines it ("Network Policies", concepts/services-networking/network-policies,
// and the API reference, NetworkPolicySpec); docs/networkpolicy.md says
// what meshtls enforces and where it differs from a cluster.

// NamespaceNameLabel is the label the API server gives every Namespace:
// its name (kubernetes.io/metadata.name, immutable since Kubernetes 1.22).
const NamespaceNameLabel = "kubernetes.io/metadata.name"

func loadNetworkPolicy(l *loader, d *doc) {
	// Clusters before Kubernetes 1.28 print an (always empty) status the
	// Go type no longer has: accepted, as a cluster's dump is.
	delete(d.obj, "status")
	np, ok := decodeKube[networkingv1.NetworkPolicy](d)
	if !ok {
		return
	}
	np.ObjectMeta = d.meta
	np.TypeMeta = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
	n := len(l.probs)
	validateNetworkPolicy(&np.Spec, d.rep)
	if len(l.probs) > n {
		return
	}
	for i, r := range np.Spec.Ingress {
		l.noticeIPv6(d, fmt.Sprintf("spec.ingress[%d].from", i), r.From)
	}
	for i, r := range np.Spec.Egress {
		l.noticeIPv6(d, fmt.Sprintf("spec.egress[%d].to", i), r.To)
	}
	l.m.NetworkPolicies = append(l.m.NetworkPolicies, np)
}

// noticeIPv6 says that an IPv6 ipBlock matches nothing: the run's network
// is IPv4 only.
func (l *loader) noticeIPv6(d *doc, field string, peers []networkingv1.NetworkPolicyPeer) {
	for j, p := range peers {
		if p.IPBlock == nil {
			continue
		}
		if pr, err := netip.ParsePrefix(p.IPBlock.CIDR); err == nil && !pr.Addr().Is4() {
			l.notice(d.src, d.kind, d.name, fmt.Sprintf("%s[%d].ipBlock.cidr: %s is IPv6 and matches no address (meshtls's network is IPv4 only)", field, j, p.IPBlock.CIDR))
		}
	}
}

// validateNetworkPolicy refuses what the API server refuses
// (pkg/apis/networking/validation ValidateNetworkPolicySpec): selectors,
// policyTypes, peers with an ipBlock and a selector, CIDRs and excepts
// outside them, protocols, ports and endPort.
func validateNetworkPolicy(s *networkingv1.NetworkPolicySpec, rep report) {
	if _, err := metav1.LabelSelectorAsSelector(&s.PodSelector); err != nil {
		rep("spec.podSelector", err.Error())
	}
	for i, t := range s.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			rep(fmt.Sprintf("spec.policyTypes[%d]", i), fmt.Sprintf("%q is not a policy type (allowed: Ingress, Egress)", t))
		}
	}
	for i, r := range s.Ingress {
		f := fmt.Sprintf("spec.ingress[%d]", i)
		validatePeers(f+".from", r.From, rep)
		validatePolicyPorts(f+".ports", r.Ports, rep)
	}
	for i, r := range s.Egress {
		f := fmt.Sprintf("spec.egress[%d]", i)
		validatePeers(f+".to", r.To, rep)
		validatePolicyPorts(f+".ports", r.Ports, rep)
	}
}

func validatePeers(field string, peers []networkingv1.NetworkPolicyPeer, rep report) {
	for j, p := range peers {
		f := fmt.Sprintf("%s[%d]", field, j)
		n := 0
		for _, set := range []bool{p.PodSelector != nil, p.NamespaceSelector != nil, p.IPBlock != nil} {
			if set {
				n++
			}
		}
		switch {
		case n == 0:
			rep(f, "must give podSelector, namespaceSelector or ipBlock")
		case p.IPBlock != nil && n > 1:
			rep(f, "ipBlock may not be combined with podSelector or namespaceSelector")
		}
		for key, sel := range map[string]*metav1.LabelSelector{"podSelector": p.PodSelector, "namespaceSelector": p.NamespaceSelector} {
			if sel == nil {
				continue
			}
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				rep(f+"."+key, err.Error())
			}
		}
		if b := p.IPBlock; b != nil {
			cidr, err := netip.ParsePrefix(b.CIDR)
			if err != nil {
				rep(f+".ipBlock.cidr", fmt.Sprintf("%q is not a CIDR (e.g. 192.0.2.0/24)", b.CIDR))
				continue
			}
			for k, e := range b.Except {
				x, err := netip.ParsePrefix(e)
				switch {
				case err != nil:
					rep(fmt.Sprintf("%s.ipBlock.except[%d]", f, k), fmt.Sprintf("%q is not a CIDR (e.g. 192.0.2.0/28)", e))
				case x.Addr().Is4() != cidr.Addr().Is4() || x.Bits() <= cidr.Bits() || !cidr.Contains(x.Addr()):
					rep(fmt.Sprintf("%s.ipBlock.except[%d]", f, k), fmt.Sprintf("%s must be a strict subset of cidr %s", e, b.CIDR))
				}
			}
		}
	}
}

func validatePolicyPorts(field string, ports []networkingv1.NetworkPolicyPort, rep report) {
	for j, p := range ports {
		f := fmt.Sprintf("%s[%d]", field, j)
		if p.Protocol != nil {
			switch *p.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				rep(f+".protocol", fmt.Sprintf("%q is not a protocol (allowed: TCP, UDP, SCTP)", *p.Protocol))
			}
		}
		if p.Port == nil {
			if p.EndPort != nil {
				rep(f+".endPort", "may not be given without port")
			}
			continue
		}
		if p.Port.Type == intstr.String {
			if errs := validation.IsValidPortName(p.Port.StrVal); len(errs) > 0 {
				rep(f+".port", fmt.Sprintf("%q: %s", p.Port.StrVal, strings.Join(errs, "; ")))
			}
			if p.EndPort != nil {
				rep(f+".endPort", "may not be given with a named port")
			}
			continue
		}
		if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
			rep(f+".port", fmt.Sprintf("must be 1-65535, got %d", p.Port.IntVal))
		}
		if p.EndPort != nil && (*p.EndPort < p.Port.IntVal || *p.EndPort > 65535) {
			rep(f+".endPort", fmt.Sprintf("must be between port (%d) and 65535, got %d", p.Port.IntVal, *p.EndPort))
		}
	}
}

// NamespaceLabels are a namespace's labels as the API server has them: a
// Namespace document's, plus NamespaceNameLabel, which every namespace
// has (one the bundle names only in metadata.namespace too).
func (m *Mesh) NamespaceLabels(ns string) map[string]string {
	out := map[string]string{}
	for k, v := range m.Namespaces[ns] {
		out[k] = v
	}
	out[NamespaceNameLabel] = ns
	return out
}

// policyPod is a pod as NetworkPolicy sees it: its namespace, labels and
// named container ports. Workloads marked external are outside the
// cluster: only an ipBlock matches them.
type policyPod struct {
	ns     string
	labels map[string]string
	ports  map[string]uint16 // named container ports (TCP)
}

func podOf(w *Workload) policyPod {
	p := policyPod{ns: w.Namespace, labels: w.Labels, ports: map[string]uint16{}}
	for _, pt := range w.Ports {
		if pt.Name != "" {
			p.ports[pt.Name] = uint16(pt.Port)
		}
	}
	return p
}

// selects reports whether np's podSelector selects p (a pod of np's namespace).
func selects(np *networkingv1.NetworkPolicy, p policyPod) bool {
	return p.ns == np.Namespace && selectorMatches(&np.Spec.PodSelector, p.labels)
}

func selectorMatches(s *metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(l))
}

// policyTypes are the directions np isolates: its policyTypes, or when
// none are given Ingress, plus Egress when it has egress rules (the API
// server's default).
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress), slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// peerMatches reports whether a selector peer of a rule of np matches p:
// podSelector alone picks pods of np's namespace, namespaceSelector alone
// every pod of the namespaces it selects, both together the pods of those
// namespaces the podSelector picks.
func (m *Mesh) peerMatches(np *networkingv1.NetworkPolicy, peer networkingv1.NetworkPolicyPeer, p policyPod) bool {
	if peer.NamespaceSelector == nil {
		return p.ns == np.Namespace && selectorMatches(peer.PodSelector, p.labels)
	}
	if !selectorMatches(peer.NamespaceSelector, m.NamespaceLabels(p.ns)) {
		return false
	}
	return peer.PodSelector == nil || selectorMatches(peer.PodSelector, p.labels)
}

// NetPolicy is what the bundle's NetworkPolicies allow w's pod, with
// every pod's address from addrs (the run's address plan, by workload
// id): for each direction some policy selecting w isolates, the union of
// the rules of every policy selecting w for it (none: deny all). A
// selector peer becomes the addresses of the pods it matches, an ipBlock
// its CIDR and excepts; a named port resolves against the destination
// pod's container ports (w's for ingress, each peer's for egress; a peer
// without that port adds nothing).
func (m *Mesh) NetPolicy(w *Workload, addrs map[string]netip.Addr) pod.NetPolicy {
	var out pod.NetPolicy
	if w.External {
		return out // outside the cluster: no policy selects it
	}
	self := podOf(w)
	for _, np := range m.NetworkPolicies {
		if !selects(np, self) {
			continue
		}
		in, eg := policyTypes(np)
		if in {
			if out.Ingress == nil {
				out.Ingress = &pod.NetRules{Allow: []pod.NetAllow{}}
			}
			for _, r := range np.Spec.Ingress {
				out.Ingress.Allow = append(out.Ingress.Allow, m.ruleAllows(np, r.From, r.Ports, self, addrs, true)...)
			}
		}
		if eg {
			if out.Egress == nil {
				out.Egress = &pod.NetRules{Allow: []pod.NetAllow{}}
			}
			for _, r := range np.Spec.Egress {
				out.Egress.Allow = append(out.Egress.Allow, m.ruleAllows(np, r.To, r.Ports, self, addrs, false)...)
			}
		}
	}
	for _, r := range []*pod.NetRules{out.Ingress, out.Egress} {
		if r != nil {
			r.Allow = sortedAllows(r.Allow)
		}
	}
	return out
}

// allPeers is a rule without from/to: every address.
var allPeers = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

// ruleAllows flattens one rule into allowed (peer, protocol, port)
// entries: each peer address or block times each port.
func (m *Mesh) ruleAllows(np *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort,
	self policyPod, addrs map[string]netip.Addr, ingress bool) []pod.NetAllow {
	// A target is an allowed peer: a block (with excepts) and, for
	// egress named ports, the pod at that address when it is one.
	type target struct {
		net    netip.Prefix
		except []netip.Prefix
		pod    *policyPod
	}
	var targets []target
	podTarget := func(w *Workload) {
		a, ok := addrs[w.ID()]
		if !ok {
			return
		}
		p := podOf(w)
		targets = append(targets, target{net: netip.PrefixFrom(a, 32), pod: &p})
	}
	if len(peers) == 0 {
		targets = append(targets, target{net: allPeers})
	}
	for _, peer := range peers {
		if b := peer.IPBlock; b != nil {
			cidr, err := netip.ParsePrefix(b.CIDR)
			if err != nil || !cidr.Addr().Is4() {
				continue // IPv6: nothing in the run's network (noticed at load)
			}
			t := target{net: cidr.Masked()}
			for _, e := range b.Except {
				if x, err := netip.ParsePrefix(e); err == nil {
					t.except = append(t.except, x.Masked())
				}
			}
			targets = append(targets, t)
			continue
		}
		for _, w := range m.Workloads {
			if !w.External && m.peerMatches(np, peer, podOf(w)) {
				podTarget(w)
			}
		}
	}
	var out []pod.NetAllow
	if len(ports) == 0 {
		for _, t := range targets {
			out = append(out, pod.NetAllow{Peer: t.net, Except: t.except})
		}
		return out
	}
	for _, pp := range ports {
		proto := string(corev1.ProtocolTCP)
		if pp.Protocol != nil {
			proto = string(*pp.Protocol)
		}
		for _, t := range targets {
			a := pod.NetAllow{Peer: t.net, Except: t.except, Protocol: proto}
			switch {
			case pp.Port == nil:
			case pp.Port.Type == intstr.Int:
				a.Port = uint16(pp.Port.IntVal)
				if pp.EndPort != nil && *pp.EndPort != pp.Port.IntVal {
					a.EndPort = uint16(*pp.EndPort)
				}
			case ingress:
				// The destination is this pod: its container port of that name.
				port, ok := self.ports[pp.Port.StrVal]
				if !ok || proto != string(corev1.ProtocolTCP) {
					continue
				}
				a.Port = port
			default:
				// The destination pod's port of that name: a block stands
				// for the pods inside it.
				out = append(out, m.namedEgress(t.net, t.except, t.pod, pp.Port.StrVal, proto, addrs)...)
				continue
			}
			out = append(out, a)
		}
	}
	return out
}

// namedEgress allows a named destination port: on pod (a selector peer),
// or on every pod inside net and outside except (a block). Only TCP ports
// have names here (meshtls's pods serve TCP).
func (m *Mesh) namedEgress(net netip.Prefix, except []netip.Prefix, p *policyPod, name, proto string, addrs map[string]netip.Addr) []pod.NetAllow {
	if proto != string(corev1.ProtocolTCP) {
		return nil
	}
	if p != nil {
		if port, ok := p.ports[name]; ok {
			return []pod.NetAllow{{Peer: net, Protocol: proto, Port: port}}
		}
		return nil
	}
	var out []pod.NetAllow
	for _, w := range m.Workloads {
		a, ok := addrs[w.ID()]
		if !ok || w.External || !net.Contains(a) || slices.ContainsFunc(except, func(x netip.Prefix) bool { return x.Contains(a) }) {
			continue
		}
		if port, ok := podOf(w).ports[name]; ok {
			out = append(out, pod.NetAllow{Peer: netip.PrefixFrom(a, 32), Protocol: proto, Port: port})
		}
	}
	return out
}

// sortedAllows orders and deduplicates entries, so one policy gives one
// file (the harness reprograms a pod only when its file changes).
func sortedAllows(in []pod.NetAllow) []pod.NetAllow {
	key := func(a pod.NetAllow) string { return fmt.Sprintf("%v", a) }
	slices.SortFunc(in, func(a, b pod.NetAllow) int {
		return cmp.Or(a.Peer.Addr().Compare(b.Peer.Addr()), cmp.Compare(a.Peer.Bits(), b.Peer.Bits()),
			strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), cmp.Compare(a.EndPort, b.EndPort),
			strings.Compare(key(a), key(b)))
	})
	return slices.CompactFunc(in, func(a, b pod.NetAllow) bool { return key(a) == key(b) })
}

// istiodNamespace is where istiod runs in a default install (istioctl's
// and the Helm charts' istio-system), whatever the mesh's root namespace.
const istiodNamespace = "istio-system"

// Pods a cluster has and a bundle does not: what an egress policy must
// let a pod reach for the cluster's plumbing to work.
var (
	// istiod serves sidecars and gateways their config and certificates on
	// 15012 (manifests/charts/istio-control/istio-discovery, its Service
	// and Deployment labels app: istiod, istio: pilot).
	istiodPod = policyPod{ns: istiodNamespace, labels: map[string]string{"app": "istiod", "istio": "pilot"}, ports: map[string]uint16{}}
	// CoreDNS answers the cluster's names on UDP 53 from kube-system
	// (pods labelled k8s-app: kube-dns, port named dns).
	kubeDNSPod = policyPod{ns: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}, ports: map[string]uint16{"dns": 53}}
)

// egressAllows reports whether the policies selecting from would let it
// open a connection to dst on proto/port, without addresses: an ipBlock
// might hold dst, so it counts as allowing it. It also returns the
// policies that isolate from for egress (none: not isolated).
func (m *Mesh) egressAllows(from *Workload, dst policyPod, proto string, port uint16) (bool, []string) {
	self := podOf(from)
	var isolating []string
	for _, np := range m.NetworkPolicies {
		if !selects(np, self) {
			continue
		}
		if _, eg := policyTypes(np); !eg {
			continue
		}
		isolating = append(isolating, np.Namespace+"/"+np.Name)
		for _, r := range np.Spec.Egress {
			peerOK := len(r.To) == 0
			for _, peer := range r.To {
				peerOK = peerOK || peer.IPBlock != nil || m.peerMatches(np, peer, dst)
			}
			portOK := len(r.Ports) == 0
			for _, pp := range r.Ports {
				pr := string(corev1.ProtocolTCP)
				if pp.Protocol != nil {
					pr = string(*pp.Protocol)
				}
				switch {
				case pr != proto:
				case pp.Port == nil:
					portOK = true
				case pp.Port.Type == intstr.String:
					portOK = portOK || dst.ports[pp.Port.StrVal] == port
				default:
					end := pp.Port.IntVal
					if pp.EndPort != nil {
						end = *pp.EndPort
					}
					portOK = portOK || (int32(port) >= pp.Port.IntVal && int32(port) <= end)
				}
			}
			if peerOK && portOK {
				return true, isolating
			}
		}
	}
	return len(isolating) == 0, isolating
}

// networkPolicyNotices say where a bundle's egress policies would break a
// cluster's plumbing that meshtls does without the network: a proxy's
// connection to istiod (meshtls serves config over a Unix socket) and
// name resolution through kube-dns (meshtls's pods resolve from
// /etc/hosts). The run still enforces the policies on every call.
func (l *loader) networkPolicyNotices() {
	m := l.m
	for _, w := range m.Workloads {
		if w.External {
			continue
		}
		ok, by := m.egressAllows(w, kubeDNSPod, string(corev1.ProtocolUDP), 53)
		if !ok {
			l.notice(w.Source, w.Kind, w.ID(), fmt.Sprintf("NetworkPolicy %s: isolates its egress and allows no UDP 53 to kube-dns (kube-system, k8s-app: kube-dns): in a cluster it could not resolve names; meshtls's pods resolve from /etc/hosts, so its calls are made and the policy decides each connection", strings.Join(by, ", ")))
		}
		if !w.HasProxy() {
			continue
		}
		if ok, by := m.egressAllows(w, istiodPod, string(corev1.ProtocolTCP), 15012); !ok {
			l.notice(w.Source, w.Kind, w.ID(), fmt.Sprintf("NetworkPolicy %s: isolates its egress and allows no TCP 15012 to istiod (%s, app: istiod): in a cluster its proxy would get no config or certificate; meshtls's control plane serves it over a Unix socket, so it runs configured here", strings.Join(by, ", "), istiodNamespace))
		}
	}
}
