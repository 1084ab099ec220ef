package crosscheck

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/mesh"
)

// The cluster state a bundle stands for, as istiod would see it from
// Kubernetes. Facts this relies on (docs/oracle.md):
//   - an injected sidecar's pod carries the label security.istio.io/tlsMode=istio
//     (the injection template, manifests/charts/istio-control/istio-discovery/files/injection-template.yaml)
//     and the annotation sidecar.istio.io/status; gateways and pods without
//     sidecar carry neither (gateway template and chart);
//   - a Service's endpoints reach istiod as EndpointSlices, which the
//     endpoint controller writes in a cluster: here we write them;
//   - Services get the cluster IP of the address plan (mesh.AddressPlan),
//     the one the run's pods dial (headless Services: None).

const (
	tlsModeLabel     = "security.istio.io/tlsMode"
	sidecarStatusKey = "sidecar.istio.io/status"
	sidecarStatus    = `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["workload-socket","credential-socket","workload-certs","istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null}`
)

// exportCase writes one bundle as the oracle's input.
func exportCase(name string, m *mesh.Mesh, addrs map[string]netip.Addr) (oracleCase, error) {
	c := oracleCase{Name: name}
	var kube, istio bytes.Buffer
	put := func(buf *bytes.Buffer, obj any) error {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		buf.WriteString("---\n")
		buf.Write(b)
		return nil
	}
	var errs []error
	add := func(buf *bytes.Buffer, obj any) {
		if err := put(buf, obj); err != nil {
			errs = append(errs, err)
		}
	}

	namespaces := []string{m.Root(), "default"}
	for _, w := range m.Workloads {
		namespaces = append(namespaces, w.Namespace)
	}
	for _, s := range m.Services {
		namespaces = append(namespaces, s.Namespace)
	}
	slices.Sort(namespaces)
	for _, ns := range slices.Compact(namespaces) {
		add(&kube, &corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}

	for _, w := range m.Workloads {
		if w.External {
			continue // not in the registry: reachable through a ServiceEntry only
		}
		ip := addrs[w.ID()].String()
		labels := map[string]string{}
		for k, v := range w.Labels {
			labels[k] = v
		}
		annotations := map[string]string{}
		if w.Sidecar && !w.Gateway {
			labels[tlsModeLabel] = "istio"
			annotations[sidecarStatusKey] = sidecarStatus
		}
		var ports []corev1.ContainerPort
		for _, p := range w.Ports {
			ports = append(ports, corev1.ContainerPort{Name: p.Name, ContainerPort: int32(p.Port), Protocol: corev1.ProtocolTCP})
		}
		add(&kube, &corev1.Pod{
			TypeMeta:   typeMeta("v1", "Pod"),
			ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{
				ServiceAccountName: w.ServiceAccount,
				NodeName:           "node",
				Containers:         []corev1.Container{{Name: "app", Image: "app", Ports: ports}},
			},
			Status: corev1.PodStatus{
				Phase:      corev1.PodRunning,
				PodIP:      ip,
				PodIPs:     []corev1.PodIP{{IP: ip}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			},
		})
	}

	for _, s := range m.Services {
		var ports []corev1.ServicePort
		var epPorts []discoveryv1.EndpointPort
		for _, p := range s.Ports {
			sp := corev1.ServicePort{Name: p.Name, Port: int32(p.Port), TargetPort: intstr.FromInt32(int32(p.TargetPort)), Protocol: corev1.ProtocolTCP}
			ep := discoveryv1.EndpointPort{Name: ptr(p.Name), Port: ptr(int32(p.TargetPort)), Protocol: ptr(corev1.ProtocolTCP)}
			if p.AppProtocol != "" {
				sp.AppProtocol, ep.AppProtocol = ptr(p.AppProtocol), ptr(p.AppProtocol)
			}
			ports = append(ports, sp)
			epPorts = append(epPorts, ep)
		}
		// The cluster IP of the run's address plan, as meshtls's own side
		// and the pods' DNS use (headless: None).
		clusterIP := corev1.ClusterIPNone
		if s.ExternalName != "" {
			// An alias: no cluster IP and no endpoints (conversion.go).
			add(&kube, &corev1.Service{
				TypeMeta: typeMeta("v1", "Service"),
				ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Annotations: serviceAnnotations(s),
					CreationTimestamp: metav1.NewTime(s.Created)},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: s.ExternalName, Ports: ports},
			})
			continue
		}
		if s.HasClusterIP() {
			vip, ok := addrs[s.VIPKey()]
			if !ok {
				errs = append(errs, fmt.Errorf("the Service %s/%s has no cluster IP in the address plan", s.Namespace, s.Name))
				continue
			}
			clusterIP = vip.String()
		}
		// Creation time and the port-translation label decide which
		// Service's targetPort a gateway listens on (mesh.GatewayPort).
		var labels map[string]string
		if s.NoGatewayPortTranslation {
			labels = map[string]string{mesh.DisableGatewayPortTranslationLabel: "true"}
		}
		// exportTo decides which namespaces see the Service (Service.VisibleFrom).
		add(&kube, &corev1.Service{
			TypeMeta: typeMeta("v1", "Service"),
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels, Annotations: serviceAnnotations(s),
				CreationTimestamp: metav1.NewTime(s.Created)},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
				Selector: s.Selector, Ports: ports,
			},
		})
		if s.Manual {
			for _, es := range manualSlices(s, addrs) {
				add(&kube, es)
			}
			continue
		}
		var eps []discoveryv1.Endpoint
		for _, w := range m.Endpoints(s) {
			eps = append(eps, discoveryv1.Endpoint{
				Addresses:  []string{addrs[w.ID()].String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: w.Name, Namespace: w.Namespace},
			})
		}
		add(&kube, &discoveryv1.EndpointSlice{
			TypeMeta: typeMeta("discovery.k8s.io/v1", "EndpointSlice"),
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-oracle", Namespace: s.Namespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: s.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   eps,
			Ports:       epPorts,
		})
	}
	for _, s := range m.Secrets {
		add(&kube, typed(s, "v1", "Secret"))
	}

	for _, o := range m.PeerAuthentications {
		add(&istio, typed(o, "security.istio.io/v1", "PeerAuthentication"))
	}
	for _, o := range m.DestinationRules {
		add(&istio, typed(o, "networking.istio.io/v1", "DestinationRule"))
	}
	for _, o := range m.Gateways {
		add(&istio, typed(o, "networking.istio.io/v1", "Gateway"))
	}
	for _, o := range m.VirtualServices {
		add(&istio, typed(o, "networking.istio.io/v1", "VirtualService"))
	}
	for _, o := range m.ServiceEntries {
		add(&istio, typed(o, "networking.istio.io/v1", "ServiceEntry"))
	}
	for _, o := range m.Sidecars {
		add(&istio, typed(o, "networking.istio.io/v1", "Sidecar"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("crosscheck: write %s as Kubernetes objects: %v", name, errs[0])
	}
	c.Kubernetes, c.Istio = kube.String(), istio.String()
	// istiod reads the mesh config from its ConfigMap and lays it over
	// its defaults (pkg/config/mesh/mesh.go, ApplyMeshConfigDefaults): the
	// oracle does that with the same YAML.
	if src := m.MeshConfigSource; src != nil {
		c.Mesh = src.YAML
	}

	for _, w := range m.Workloads {
		if !w.HasProxy() {
			continue
		}
		labels := map[string]string{}
		for k, v := range w.Labels {
			labels[k] = v
		}
		if !w.Gateway {
			labels[tlsModeLabel] = "istio"
		}
		c.Proxies = append(c.Proxies, oracleProxy{
			ID: w.ID(), Pod: w.Name, Namespace: w.Namespace, IP: addrs[w.ID()].String(),
			Router: w.Gateway, Labels: labels, ServiceAccount: w.ServiceAccount,
		})
	}
	return c, nil
}

// serviceAnnotations are the Istio annotations meshtls models on a
// Service: exportTo decides which namespaces see it (Service.VisibleFrom).
func serviceAnnotations(s *mesh.Service) map[string]string {
	if len(s.ExportTo) == 0 {
		return nil
	}
	return map[string]string{mesh.ExportToAnnotation: strings.Join(s.ExportTo, ",")}
}

// manualSlices are the EndpointSlices of a selector-less Service as
// istiod reads them from a cluster (hand-written slices, or the copies the
// endpointslicemirroring controller makes of hand-written Endpoints): a pod
// of the bundle at its run address with its targetRef, an address outside
// the cluster as written, with none. One slice per set of ports, as a
// slice has one port list.
func manualSlices(s *mesh.Service, addrs map[string]netip.Addr) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	byPorts := map[string]*discoveryv1.EndpointSlice{}
	for _, e := range s.ManualEndpoints {
		key := fmt.Sprint(e.Ports)
		es, ok := byPorts[key]
		if !ok {
			es = &discoveryv1.EndpointSlice{
				TypeMeta: typeMeta("discovery.k8s.io/v1", "EndpointSlice"),
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-oracle-%d", s.Name, len(out)), Namespace: s.Namespace,
					Labels: map[string]string{discoveryv1.LabelServiceName: s.Name, discoveryv1.LabelManagedBy: "endpointslicemirroring-controller.k8s.io"}},
				AddressType: discoveryv1.AddressTypeIPv4,
			}
			for _, name := range sortedNames(e.Ports) {
				es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(int32(e.Ports[name])), Protocol: ptr(corev1.ProtocolTCP)})
			}
			byPorts[key] = es
			out = append(out, es)
		}
		ep := discoveryv1.Endpoint{Addresses: []string{e.Addr.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
		if e.Pod != nil {
			ep.Addresses = []string{addrs[e.Pod.ID()].String()}
			ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: e.Pod.Name, Namespace: e.Pod.Namespace}
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return out
}

func sortedNames(m map[string]uint32) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// typed is a copy of o that says its apiVersion and kind (loaded objects
// may not).
func typed(o runtime.Object, apiVersion, kind string) runtime.Object {
	c := o.DeepCopyObject()
	c.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(apiVersion, kind))
	return c
}

func ptr[T any](v T) *T { return &v }
