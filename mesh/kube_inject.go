package mesh

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshtls/meshtls/pod"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations Istio's sidecar injector reads.
const (
	labelInjection = "istio-injection"         // namespace: enabled | disabled
	labelRev       = "istio.io/rev"            // namespace or pod: a control-plane revision
	labelInject    = "sidecar.istio.io/inject" // pod label (or, weaker, annotation): "true" | "false"
)

// injectionDecision says whether Istio's injector gives a pod created from
// this template a sidecar, and when it does not (or assumes something),
// why, in one line.
//
// Two steps, as in a cluster. First the API server calls the injection
// webhook only when one of the MutatingWebhookConfiguration's selectors
// matches (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml):
//   - namespace istio-injection=enabled, pod label sidecar.istio.io/inject not "false";
//   - namespace istio.io/rev=REV (and no istio-injection), pod label not "false";
//   - namespace with neither, pod label sidecar.istio.io/inject="true" and no istio.io/rev label;
//   - namespace with neither, pod label istio.io/rev=REV, pod label not "false".
//
// istio-injection=disabled (or any other value) matches none. Then the
// webhook injects unless (pkg/kube/inject/inject.go injectRequired) the pod
// uses the host network, its namespace is a Kubernetes system namespace,
// or the pod's sidecar.istio.io/inject label, else its annotation of that
// name, is "false" (the label wins when both are set; the default policy
// "enabled" injects when neither is). meshtls's control plane stands in
// for every revision.
func injectionDecision(nsLabels map[string]string, tmpl metav1.ObjectMeta, spec corev1.PodSpec) (bool, string) {
	podLabel, hasPodLabel := tmpl.Labels[labelInject]
	podRev, hasPodRev := tmpl.Labels[labelRev]
	nsInj, hasNsInj := nsLabels[labelInjection]
	nsRev, hasNsRev := nsLabels[labelRev]
	notFalse := !hasPodLabel || podLabel != "false" // NotIn matches an absent key
	ns := tmpl.Namespace
	var called bool
	var rev string
	switch {
	case hasNsInj:
		called = nsInj == "enabled" && notFalse
		if !called && nsInj != "enabled" {
			return false, fmt.Sprintf("no sidecar: namespace %s has %s=%s", ns, labelInjection, nsInj)
		}
	case hasNsRev:
		called, rev = notFalse, nsRev
	case hasPodRev:
		called, rev = notFalse, podRev
	default:
		called = hasPodLabel && podLabel == "true"
		if !called {
			msg := fmt.Sprintf("no sidecar: namespace %s has no %s or %s label and the pod template no %s: \"true\" label", ns, labelInjection, labelRev, labelInject)
			if tmpl.Annotations[labelInject] == "true" {
				msg += " (the annotation cannot enable injection: the webhook's selector sees labels only)"
			}
			return false, msg
		}
	}
	if !called {
		return false, fmt.Sprintf("no sidecar: the pod template has the label %s: \"false\"", labelInject)
	}
	if spec.HostNetwork {
		return false, "no sidecar: the pod uses the host network, where Istio never injects"
	}
	value := tmpl.Annotations[labelInject]
	if hasPodLabel {
		value = podLabel
	}
	if value == "false" {
		return false, fmt.Sprintf("no sidecar: the pod template has the annotation %s: \"false\"", labelInject)
	}
	if rev != "" && rev != "default" {
		return true, fmt.Sprintf("%s=%s: meshtls's control plane stands in for every revision", labelRev, rev)
	}
	return true, ""
}

// Istio's capture annotations (pkg/kube/inject templates pass them to
// istio-init as -b, -d, -o, -i, -x; tools/istio-iptables/pkg/capture/run.go).
const (
	annIncludeInboundPorts     = "traffic.sidecar.istio.io/includeInboundPorts"
	annExcludeInboundPorts     = "traffic.sidecar.istio.io/excludeInboundPorts"
	annExcludeOutboundPorts    = "traffic.sidecar.istio.io/excludeOutboundPorts"
	annIncludeOutboundIPRanges = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	annExcludeOutboundIPRanges = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
)

// modelledAnnotations are the istio.io annotations meshtls reads; others
// that change traffic get a notice. harmlessAnnotations cannot change TLS
// or routing (resources, metrics, the injector's own record).
var (
	modelledAnnotations = []string{labelInject, annIncludeInboundPorts, annExcludeInboundPorts, annExcludeOutboundPorts,
		annIncludeOutboundIPRanges, annExcludeOutboundIPRanges, "inject.istio.io/templates"}
	harmlessAnnotations = []string{"sidecar.istio.io/status", "sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyCPULimit",
		"sidecar.istio.io/proxyMemory", "sidecar.istio.io/proxyMemoryLimit", "prometheus.istio.io/merge-metrics",
		"sidecar.istio.io/statsInclusionPrefixes", "sidecar.istio.io/logLevel", "sidecar.istio.io/componentLogLevel",
		"istio.io/rev", "sidecar.istio.io/proxyImage", "sidecar.istio.io/agentLogLevel"}
)

// captureAnnotations reads the capture annotations; field is the path of
// the annotations map, for messages.
func (l *loader) captureAnnotations(ann map[string]string, field string, rep report) Capture {
	var c Capture
	f := func(k string) string { return fmt.Sprintf("%s[%s]", field, k) }
	if v, ok := ann[annIncludeInboundPorts]; ok {
		switch strings.TrimSpace(v) {
		case "*":
		case "":
			c.NoInbound = true
		default:
			c.InboundPorts = parsePortList(v, f(annIncludeInboundPorts), rep)
		}
	}
	c.ExcludeInbound = parsePortList(ann[annExcludeInboundPorts], f(annExcludeInboundPorts), rep)
	c.ExcludeOutbound = parsePortList(ann[annExcludeOutboundPorts], f(annExcludeOutboundPorts), rep)
	if v, ok := ann[annIncludeOutboundIPRanges]; ok {
		switch strings.TrimSpace(v) {
		case "*":
		case "":
			c.NoOutbound = true
		default:
			c.OutboundRanges = parseRangeList(v, f(annIncludeOutboundIPRanges), rep)
		}
	}
	c.ExcludeRanges = parseRangeList(ann[annExcludeOutboundIPRanges], f(annExcludeOutboundIPRanges), rep)
	return c
}

// parsePortList and parseRangeList read the annotations with the parsers
// of the init that programs the capture from them (pod), so a bundle is
// refused exactly when the init would refuse its flags.
func parsePortList(v, field string, rep report) []uint32 {
	ps, err := pod.ParsePorts(v)
	if err != nil {
		rep(field, err.Error())
		return nil
	}
	var out []uint32
	for _, p := range ps {
		out = append(out, uint32(p))
	}
	return out
}

func parseRangeList(v, field string, rep report) []netip.Prefix {
	rs, err := pod.ParseRanges(v)
	if err != nil {
		rep(field, err.Error()+" (or * for every address)")
		return nil
	}
	return rs
}

// unmodelledAnnotations gives a notice for each Istio annotation on the
// pod that could change traffic and that meshtls does not read.
func (l *loader) unmodelledAnnotations(kp *kubePods, field string) {
	for _, k := range sortedKeys(kp.tmpl.Annotations) {
		if !strings.Contains(k, "istio.io/") || slices.Contains(modelledAnnotations, k) || slices.Contains(harmlessAnnotations, k) {
			continue
		}
		l.notice(kp.src, kp.kind, kp.meta.Namespace+"/"+kp.meta.Name, fmt.Sprintf("%s[%s]: not modelled; the pod runs as if it were not set", field, k))
	}
	if ranges := kp.tmpl.Annotations[annIncludeOutboundIPRanges] + kp.tmpl.Annotations[annExcludeOutboundIPRanges]; strings.Trim(ranges, "* ") != "" {
		l.notice(kp.src, kp.kind, kp.meta.Namespace+"/"+kp.meta.Name, "outbound IP ranges apply to the run's own pod addresses, not the cluster's: a range written for cluster IPs matches none of them")
	}
}
