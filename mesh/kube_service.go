package mesh

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// serviceDefaults are spec fields kubectl prints on every Service, with the
// values that change nothing meshtls models. Another value gets a notice
// saying what meshtls does instead.
var serviceDefaults = map[string]any{
	"sessionAffinity":               "None",
	"internalTrafficPolicy":         "Cluster",
	"externalTrafficPolicy":         "Cluster",
	"ipFamilyPolicy":                "SingleStack",
	"allocateLoadBalancerNodePorts": true,
	"publishNotReadyAddresses":      false,
}

// serviceRecorded are fields accepted as a cluster prints them and not used.
var serviceRecorded = []string{"clusterIP", "clusterIPs", "ipFamilies", "healthCheckNodePort", "loadBalancerClass",
	"loadBalancerIP", "loadBalancerSourceRanges", "sessionAffinityConfig", "trafficDistribution", "externalIPs"}

// ExportToAnnotation on a Service decides which namespaces' proxies see it.
// Source: pilot/pkg/serviceregistry/kube/conversion.go (ConvertService:
// annotation.NetworkingExportTo split at ",", each entry trimmed, into
// the service's ExportTo; an empty value leaves it unset).
const ExportToAnnotation = "networking.istio.io/exportTo"

// serviceAccountAnnotations add identities to a Service
// (annotation.AlphaKubernetesServiceAccounts, AlphaCanonicalServiceAccounts).
var serviceAccountAnnotations = []string{"alpha.istio.io/kubernetes-serviceaccounts", "alpha.istio.io/canonical-serviceaccounts"}

func serviceExportTo(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(v, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

func loadService(l *loader, d *doc) {
	s, ok := decodeKube[corev1.Service](d)
	if !ok {
		return
	}
	rep := d.rep
	meta := d.meta
	svc := &Service{Name: meta.Name, Namespace: meta.Namespace, Selector: s.Spec.Selector, Source: d.src, ClusterIP: s.Spec.ClusterIP,
		Created: meta.CreationTimestamp.Time}
	_, svc.NoGatewayPortTranslation = meta.Labels[DisableGatewayPortTranslationLabel]
	svc.ExportTo = serviceExportTo(meta.Annotations[ExportToAnnotation])
	for _, e := range svc.ExportTo {
		if e != "." && e != "*" && e != "~" && len(validation.IsDNS1123Label(e)) > 0 {
			l.notice(d.src, d.kind, d.name, fmt.Sprintf("metadata.annotations[%s]: %q is neither ., *, ~ nor a namespace name: it exports the Service to no namespace (Istio accepts it the same way)", ExportToAnnotation, e))
		}
	}
	for _, k := range sortedKeys(meta.Annotations) {
		switch {
		case k == ExportToAnnotation || !strings.Contains(k, "istio.io/"):
		case slices.Contains(serviceAccountAnnotations, k):
			// They add identities a client verifies (ServiceAccounts, the
			// SANs of ISTIO_MUTUAL): TLS changes, and meshtls does not model them.
			rep("metadata.annotations["+k+"]", "not supported by meshtls: it adds service accounts a client verifies as SANs (kube/conversion.go ConvertService); remove it")
		default:
			l.notice(d.src, d.kind, d.name, fmt.Sprintf("metadata.annotations[%s]: accepted, not modelled (meshtls reads only %s on a Service)", k, ExportToAnnotation))
		}
	}
	if svc.ClusterIP == "" && len(s.Spec.ClusterIPs) > 0 {
		// kubectl prints both; clusterIPs[0] is clusterIP when only the list is given.
		svc.ClusterIP = s.Spec.ClusterIPs[0]
	}
	if slices.Contains(ignoredNamespaces, meta.Namespace) {
		delete(l.m.Sources, "Service/"+d.name)
		l.notice(d.src, d.kind, d.name, fmt.Sprintf("skipped: %s is Kubernetes' own namespace", meta.Namespace))
		return
	}
	// A clusterIP is recorded, never dialled: the run gives the Service one
	// from its own network (Mesh.AddressPlan); None makes it headless.
	switch t := s.Spec.Type; t {
	case "", corev1.ServiceTypeClusterIP:
	case corev1.ServiceTypeExternalName:
		// Istio makes it an alias of the external name, not a cluster of
		// its own (pilot/pkg/serviceregistry/kube/conversion.go:
		// resolution Alias, MeshExternal; kube_endpoints.go, Aliases).
		svc.ExternalName = strings.TrimSuffix(strings.ToLower(s.Spec.ExternalName), ".")
		if svc.ExternalName == "" {
			rep("spec.externalName", "required for type ExternalName (Kubernetes refuses the Service without it)")
		} else if errs := validation.IsDNS1123Subdomain(svc.ExternalName); len(errs) > 0 {
			rep("spec.externalName", fmt.Sprintf("%q is not a DNS name: %s", s.Spec.ExternalName, strings.Join(errs, "; ")))
		}
		if len(svc.Selector) > 0 {
			l.notice(d.src, d.kind, d.name, "spec.selector: ignored for type ExternalName (Kubernetes makes no endpoints for it; Istio builds none)")
			svc.Selector = nil
		}
		svc.ClusterIP = ""
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		l.notice(d.src, d.kind, d.name, fmt.Sprintf("type %s served as ClusterIP: node ports and load-balancer addresses are not modelled (explore's outside client dials a gateway's pod on the targetPort, where the Service would send it)", t))
	default:
		rep("spec.type", fmt.Sprintf("%q is not supported by meshtls (allowed: ClusterIP, NodePort, LoadBalancer, ExternalName)", t))
	}
	var keys map[string]any
	if spec, err := json.Marshal(d.obj["spec"]); err == nil {
		_ = json.Unmarshal(spec, &keys)
	}
	for _, k := range sortedKeys(keys) {
		switch {
		case k == "selector" || k == "ports" || k == "type" || slices.Contains(serviceRecorded, k):
		case k == "externalName":
			if s.Spec.Type != corev1.ServiceTypeExternalName {
				rep("spec.externalName", "set only with type: ExternalName (Kubernetes refuses it otherwise)")
			}
		default:
			def, known := serviceDefaults[k]
			if !known {
				rep("spec."+k, "not supported by meshtls")
			} else if fmt.Sprint(keys[k]) != fmt.Sprint(def) {
				l.notice(d.src, d.kind, d.name, fmt.Sprintf("spec.%s: %v is not modelled (every pod is on one node and load balancing changes no TLS decision)", k, keys[k]))
			}
		}
	}
	var targets []intstr.IntOrString
	for i, p := range s.Spec.Ports {
		if p.Port <= 0 || p.Port > 65535 {
			rep(fmt.Sprintf("spec.ports[%d].port", i), fmt.Sprintf("must be 1-65535, got %d", p.Port))
		}
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			l.notice(d.src, d.kind, d.name, fmt.Sprintf("spec.ports[%d]: %s port %d not served (meshtls models TCP only)", i, p.Protocol, p.Port))
			continue
		}
		sp := ServicePort{Name: p.Name, Port: uint32(p.Port)}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		svc.Ports = append(svc.Ports, sp)
		targets = append(targets, p.TargetPort)
	}
	l.targets[svc] = targets
	l.m.Services = append(l.m.Services, svc)
}

// kubeServicePorts completes the ports of Kubernetes pods from the Services
// that select them: an app listens on every port a Service targets
// (containerPort is informational in Kubernetes), and Istio takes a
// port's protocol from the Service port (its name or appProtocol), not
// from the container port. A Service port whose protocol is HTTPS or TLS
// means the app terminates TLS there itself.
func (l *loader) kubeServicePorts() {
	decided := map[*Workload]map[uint32]bool{}
	for _, s := range l.m.Services {
		for _, w := range l.m.Endpoints(s) {
			if w.Kind == "" || w.Kind == "Workload" || w.Gateway {
				continue
			}
			for _, sp := range s.Ports {
				if sp.TargetPort == 0 {
					continue
				}
				i := slices.IndexFunc(w.Ports, func(p WorkloadPort) bool { return p.Port == sp.TargetPort })
				if i < 0 {
					w.Ports = append(w.Ports, WorkloadPort{Port: sp.TargetPort})
					i = len(w.Ports) - 1
				}
				if decided[w] == nil {
					decided[w] = map[uint32]bool{}
				}
				if decided[w][sp.TargetPort] {
					continue // the first Service port that targets it decides
				}
				decided[w][sp.TargetPort] = true
				p := &w.Ports[i]
				p.Name, p.AppProtocol = sp.Name, sp.AppProtocol
				p.TLS = PortProtocol(sp.Name, sp.AppProtocol, sp.Port).IsTLS()
			}
		}
	}
}
