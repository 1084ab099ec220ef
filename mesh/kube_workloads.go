package mesh

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxReplicas caps the pods one Deployment, StatefulSet or ReplicaSet
// becomes: more replicas of the same pod template change no TLS decision,
// only the run's time. A capped count gets a notice.
const MaxReplicas = 3

// kubePods is a Pod or a pod template waiting for finish: injection
// depends on Namespace labels, and ownership on other documents, which
// may come later in the bundle.
type kubePods struct {
	src      Source
	kind     string
	meta     metav1.ObjectMeta // the object's own
	tmpl     metav1.ObjectMeta // the pod's (template)
	spec     corev1.PodSpec
	replicas int
	injected bool   // a Pod that already has the istio-proxy container
	field    string // JSON path of the pod template, for messages
	rep      report
}

func loadNamespace(l *loader, d *doc) {
	if _, ok := decodeKube[corev1.Namespace](d); !ok {
		return
	}
	if l.m.Namespaces == nil {
		l.m.Namespaces = map[string]map[string]string{}
	}
	// The API server adds kubernetes.io/metadata.name to every Namespace
	// (NamespaceLabels gives it to namespaces without a document too).
	ls := map[string]string{}
	for k, v := range d.meta.Labels {
		ls[k] = v
	}
	ls[NamespaceNameLabel] = d.meta.Name
	l.m.Namespaces[d.meta.Name] = ls
}

func loadPod(l *loader, d *doc) {
	p, ok := decodeKube[corev1.Pod](d)
	if !ok {
		return
	}
	kp := &kubePods{src: d.src, kind: d.kind, meta: d.meta, tmpl: d.meta, spec: p.Spec, replicas: 1, field: "", rep: d.rep}
	kp.injected = slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == istioProxyContainer })
	l.pods = append(l.pods, kp)
}

func loadController(l *loader, d *doc) {
	kp := &kubePods{src: d.src, kind: d.kind, meta: d.meta, field: "spec.template", rep: d.rep}
	var replicas *int32
	switch d.kind {
	case "Deployment":
		o, ok := decodeKube[appsv1.Deployment](d)
		if !ok {
			return
		}
		kp.tmpl, kp.spec, replicas = o.Spec.Template.ObjectMeta, o.Spec.Template.Spec, o.Spec.Replicas
	case "StatefulSet":
		o, ok := decodeKube[appsv1.StatefulSet](d)
		if !ok {
			return
		}
		kp.tmpl, kp.spec, replicas = o.Spec.Template.ObjectMeta, o.Spec.Template.Spec, o.Spec.Replicas
	case "ReplicaSet":
		o, ok := decodeKube[appsv1.ReplicaSet](d)
		if !ok {
			return
		}
		kp.tmpl, kp.spec, replicas = o.Spec.Template.ObjectMeta, o.Spec.Template.Spec, o.Spec.Replicas
	case "DaemonSet":
		o, ok := decodeKube[appsv1.DaemonSet](d)
		if !ok {
			return
		}
		kp.tmpl, kp.spec = o.Spec.Template.ObjectMeta, o.Spec.Template.Spec
	}
	// Kubernetes defaults replicas to 1; a DaemonSet runs one pod per node,
	// and the run has one network standing for one node.
	kp.replicas = 1
	if replicas != nil {
		kp.replicas = int(*replicas)
	}
	kp.tmpl.Namespace = d.meta.Namespace
	l.pods = append(l.pods, kp)
}

// Container and argument names that tell what an Istio pod is.
const (
	istioProxyContainer = "istio-proxy"
)

// ignoredNamespaces are Kubernetes' own: Istio's injector never injects
// pods there (pkg/kube/inject/initializer.go IgnoredNamespaces), and
// nothing there is an application meshtls should call or run.
var ignoredNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}

// kubeWorkloads turns the Pods and pod templates into Workloads, once
// every document (Namespaces, owners) is known.
func (l *loader) kubeWorkloads() {
	for _, kp := range l.pods {
		id := kp.meta.Namespace + "/" + kp.meta.Name
		// kubectl get all prints a Deployment, its ReplicaSets and their
		// Pods: only the top owner present in the bundle becomes pods.
		if owner := controllerOf(kp.meta); owner != nil {
			key := owner.Kind + "/" + kp.meta.Namespace + "/" + owner.Name
			if _, ok := l.m.Sources[key]; ok {
				l.notice(kp.src, kp.kind, id, fmt.Sprintf("skipped: its pods are those of %s %s, also in the bundle", owner.Kind, owner.Name))
				continue
			}
		}
		if slices.Contains(ignoredNamespaces, kp.meta.Namespace) {
			l.notice(kp.src, kp.kind, id, fmt.Sprintf("skipped: %s is Kubernetes' own namespace (Istio never injects there)", kp.meta.Namespace))
			continue
		}
		if isControlPlane(kp.spec) {
			l.notice(kp.src, kp.kind, id, "skipped: Istio's control plane (istiod); meshtls's own control plane stands in for it")
			continue
		}
		if kp.replicas <= 0 {
			l.notice(kp.src, kp.kind, id, "skipped: replicas is 0, so it runs no pod")
			continue
		}
		n := kp.replicas
		if n > MaxReplicas {
			l.notice(kp.src, kp.kind, id, fmt.Sprintf("replicas %d capped at %d (more copies of the same pod change no TLS decision)", n, MaxReplicas))
			n = MaxReplicas
		}
		if kp.kind == "DaemonSet" {
			l.notice(kp.src, kp.kind, id, "runs one pod: the run's network stands for one node")
		}
		base := l.kubeWorkload(kp)
		if base == nil {
			continue
		}
		for i := 0; i < n; i++ {
			w := *base
			w.Ports = slices.Clone(base.Ports)
			if n > 1 {
				w.Name = fmt.Sprintf("%s-%d", base.Name, i)
				w.Controller = base.Namespace + "/" + base.Name
			}
			if prev, dup := l.m.Sources["Workload/"+w.ID()]; dup {
				kp.rep("metadata.name", fmt.Sprintf("workload %s is defined twice (first in %s); pods of different objects need different names", w.ID(), prev))
				continue
			}
			l.m.Sources["Workload/"+w.ID()] = kp.src
			l.m.Workloads = append(l.m.Workloads, &w)
		}
	}
}

// kubeWorkload is one pod of kp.
func (l *loader) kubeWorkload(kp *kubePods) *Workload {
	w := &Workload{
		Name:           kp.meta.Name,
		Namespace:      kp.meta.Namespace,
		Labels:         kp.tmpl.Labels,
		Kind:           kp.kind,
		Source:         kp.src,
		ServiceAccount: kp.spec.ServiceAccountName,
	}
	if w.ServiceAccount == "" {
		w.ServiceAccount = kp.spec.DeprecatedServiceAccount
	}
	if w.ServiceAccount == "" {
		w.ServiceAccount = "default" // Kubernetes' default service account
	}
	annField := joinPath(kp.field, "metadata.annotations")
	if kp.field == "" {
		annField = "metadata.annotations"
	}
	switch {
	case isGateway(kp.tmpl, kp.spec):
		// A gateway is an Envoy and nothing else: the container ports are
		// its own (its listeners come from the Gateway resources).
		w.Sidecar, w.Gateway = true, true
		return w
	case kp.kind == "Pod":
		// A Pod has been through the injector: it has a sidecar exactly
		// when it has the istio-proxy container.
		w.Sidecar = kp.injected
	default:
		var why string
		w.Sidecar, why = injectionDecision(l.m.Namespaces[kp.meta.Namespace], kp.tmpl, kp.spec)
		if why != "" {
			l.notice(kp.src, kp.kind, w.ID(), why)
		}
	}
	if w.Sidecar {
		w.Capture = l.captureAnnotations(kp.tmpl.Annotations, annField, kp.rep)
	}
	l.unmodelledAnnotations(kp, annField)
	for ci, c := range kp.spec.Containers {
		if c.Name == istioProxyContainer {
			continue
		}
		for pi, p := range c.Ports {
			f := fmt.Sprintf("%s.containers[%d].ports[%d]", joinPath(kp.field, "spec"), ci, pi)
			if kp.field == "" {
				f = fmt.Sprintf("spec.containers[%d].ports[%d]", ci, pi)
			}
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				l.notice(kp.src, kp.kind, w.ID(), fmt.Sprintf("%s: %s port %d not run (meshtls models TCP only)", f, p.Protocol, p.ContainerPort))
				continue
			}
			if p.ContainerPort <= 0 || p.ContainerPort > 65535 {
				kp.rep(f+".containerPort", fmt.Sprintf("must be 1-65535, got %d", p.ContainerPort))
				continue
			}
			if slices.ContainsFunc(w.Ports, func(o WorkloadPort) bool { return o.Port == uint32(p.ContainerPort) }) {
				continue // the same port in two containers: Kubernetes rejects that only at runtime
			}
			w.Ports = append(w.Ports, WorkloadPort{Name: p.Name, Port: uint32(p.ContainerPort)})
		}
	}
	return w
}

// controllerOf is the owner reference marked controller, if any.
func controllerOf(m metav1.ObjectMeta) *metav1.OwnerReference {
	for i := range m.OwnerReferences {
		if r := m.OwnerReferences[i]; r.Controller != nil && *r.Controller {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// isGateway: an Istio gateway pod. Gateways installed by istioctl or the
// operator run the proxy with "proxy router" (their istio-proxy container's
// args); gateways installed with the gateway Helm chart are injected with
// the "gateway" template (annotation inject.istio.io/templates: gateway),
// manifests/charts/gateway/templates/deployment.yaml.
func isGateway(tmpl metav1.ObjectMeta, spec corev1.PodSpec) bool {
	if slices.Contains(strings.Split(tmpl.Annotations["inject.istio.io/templates"], ","), "gateway") {
		return true
	}
	for _, c := range spec.Containers {
		if c.Name == istioProxyContainer && slices.Contains(c.Args, "router") {
			return true
		}
	}
	return false
}

// isControlPlane: istiod, whose container is "discovery" running
// pilot-discovery (manifests/charts/istio-control/istio-discovery/templates/deployment.yaml).
func isControlPlane(spec corev1.PodSpec) bool {
	for _, c := range spec.Containers {
		if c.Name == "discovery" && (strings.Contains(c.Image, "pilot") || slices.Contains(c.Args, "discovery")) {
			return true
		}
	}
	return false
}
