package mesh

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	security "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// kindDef is how one kind enters a Mesh. The table below is the one place
// that says which kinds meshtls reads; everything else is either skipped
// with a notice (it cannot change what traffic does) or refused as not
// supported (it can, and meshtls does not model it).
type kindDef struct {
	versions      []string // apiVersions served
	top           []string // allowed top-level keys; nil: apiVersion, kind, metadata, spec, status
	clusterScoped bool     // no namespace (Namespace)
	load          func(l *loader, d *doc)
}

var (
	istioNetworking = []string{"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}
	istioSecurity   = []string{"security.istio.io/v1", "security.istio.io/v1beta1"}
	appsV1          = []string{"apps/v1"}
	coreV1          = []string{"v1"}
	ours            = []string{OurAPIVersion}
	oursTop         = []string{"apiVersion", "kind", "metadata", "spec"}
	workloadTop     = []string{"apiVersion", "kind", "metadata", "spec", "status"}
)

var kinds = map[string]kindDef{
	"DestinationRule":    istioKind(istioNetworking, "networking", func(m *Mesh) *[]*networking.DestinationRule { return &m.DestinationRules }),
	"Gateway":            istioKind(istioNetworking, "networking", func(m *Mesh) *[]*networking.Gateway { return &m.Gateways }),
	"VirtualService":     istioKind(istioNetworking, "networking", func(m *Mesh) *[]*networking.VirtualService { return &m.VirtualServices }),
	"ServiceEntry":       istioKind(istioNetworking, "networking", func(m *Mesh) *[]*networking.ServiceEntry { return &m.ServiceEntries }),
	"Sidecar":            istioKind(istioNetworking, "networking", func(m *Mesh) *[]*networking.Sidecar { return &m.Sidecars }),
	"PeerAuthentication": istioKind(istioSecurity, "security", func(m *Mesh) *[]*security.PeerAuthentication { return &m.PeerAuthentications }),
	"Service":            {versions: coreV1, load: loadService},
	"ConfigMap":          {versions: coreV1, top: []string{"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}, load: loadConfigMap},
	"Endpoints":          {versions: coreV1, top: []string{"apiVersion", "kind", "metadata", "subsets"}, load: loadEndpoints},
	"EndpointSlice":      {versions: []string{"discovery.k8s.io/v1"}, top: []string{"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"}, load: loadEndpointSlice},
	"Secret":             {versions: coreV1, top: []string{"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"}, load: loadSecret},
	"Namespace":          {versions: coreV1, clusterScoped: true, load: loadNamespace},
	"Pod":                {versions: coreV1, top: workloadTop, load: loadPod},
	"Deployment":         {versions: appsV1, top: workloadTop, load: loadController},
	"StatefulSet":        {versions: appsV1, top: workloadTop, load: loadController},
	"DaemonSet":          {versions: appsV1, top: workloadTop, load: loadController},
	"ReplicaSet":         {versions: appsV1, top: workloadTop, load: loadController},
	"NetworkPolicy":      {versions: []string{"networking.k8s.io/v1"}, load: loadNetworkPolicy},
	"Workload":           {versions: ours, top: oursTop, load: loadWorkload},
	"Check":              {versions: ours, top: oursTop, load: loadCheck},
}

// skippedKinds cannot change what a call does (TLS, routing, who answers):
// each document of these kinds is skipped with a one-line notice.
var skippedKinds = map[string]string{
	"ServiceAccount":                 "a pod's identity comes from its serviceAccountName",
	"HorizontalPodAutoscaler":        "scaling",
	"VerticalPodAutoscaler":          "scaling",
	"PodDisruptionBudget":            "eviction",
	"Role":                           "Kubernetes RBAC",
	"RoleBinding":                    "Kubernetes RBAC",
	"ClusterRole":                    "Kubernetes RBAC",
	"ClusterRoleBinding":             "Kubernetes RBAC",
	"ControllerRevision":             "rollout history",
	"Event":                          "history",
	"Lease":                          "leader election",
	"PersistentVolumeClaim":          "storage",
	"PersistentVolume":               "storage",
	"StorageClass":                   "storage",
	"LimitRange":                     "resource limits",
	"ResourceQuota":                  "resource limits",
	"PriorityClass":                  "scheduling",
	"Node":                           "scheduling (every pod runs on the run's one network)",
	"CustomResourceDefinition":       "API schema",
	"MutatingWebhookConfiguration":   "admission (meshtls decides sidecar injection itself, as Istio's injector)",
	"ValidatingWebhookConfiguration": "admission",
	"Job":                            "batch pods run to completion, not servers or long-lived clients",
	"CronJob":                        "batch pods run to completion, not servers or long-lived clients",
	"Telemetry":                      "metrics, tracing and access-log settings do not change traffic",
	"ProxyConfig":                    "proxy process settings (concurrency, image) do not change TLS",
	"RequestAuthentication":          "meshtls calls carry no JWT, and a request without one is not rejected by RequestAuthentication alone",
}

// unsupportedKinds can change what a call does, and meshtls does not model
// them: a bundle with one is refused (exit 2), since a result that differs
// from the cluster without saying so is worse than none. The fix is to
// remove the document and accept that the run is without it.
var unsupportedKinds = map[string]string{
	"AuthorizationPolicy":   "it allows or denies requests",
	"EnvoyFilter":           "it patches Envoy config directly",
	"WasmPlugin":            "it runs code in the proxy",
	"WorkloadEntry":         "it adds endpoints outside Kubernetes",
	"WorkloadGroup":         "it adds endpoints outside Kubernetes",
	"Ingress":               "it configures an ingress controller",
	"ReplicationController": "it runs pods (use a Deployment)",
}

// unsupportedGroups are API groups none of whose kinds meshtls models.
var unsupportedGroups = map[string]string{
	"gateway.networking.k8s.io": "Kubernetes Gateway API resources configure gateways and routes; meshtls models Istio's Gateway and VirtualService",
}

func lookupKind(apiVersion, kind string) (kindDef, bool) {
	def, ok := kinds[kind]
	if !ok || !slices.Contains(def.versions, apiVersion) {
		return kindDef{}, false
	}
	return def, true
}

// unknownKind reports a kind outside the table: a notice for kinds that
// cannot matter, an error for everything else.
func (l *loader) unknownKind(src Source, apiVersion, kind string, obj map[string]any) {
	name := objectName(obj)
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = ""
	}
	if why, ok := unsupportedGroups[group]; ok {
		l.add(src, kind, name, "kind", fmt.Sprintf("%s is not supported by meshtls: %s; remove the document (the run is then without it)", apiVersion, why))
		return
	}
	if why, ok := unsupportedKinds[kind]; ok {
		l.add(src, kind, name, "kind", fmt.Sprintf("not supported by meshtls: %s, and meshtls does not model it; remove the document (the run is then without it)", why))
		return
	}
	if why, ok := skippedKinds[kind]; ok {
		l.notice(src, kind, name, "skipped: "+why)
		return
	}
	if def, ok := kinds[kind]; ok {
		l.add(src, kind, name, "apiVersion", fmt.Sprintf("unknown apiVersion %q for kind %s (allowed: %s)", apiVersion, kind, strings.Join(def.versions, ", ")))
		return
	}
	l.add(src, kind, name, "kind", fmt.Sprintf("unknown kind %q for apiVersion %s (meshtls reads: %s)", kind, apiVersion, strings.Join(sortedKeys(kinds), ", ")))
}

// objectName is namespace/name (or name) read leniently, for messages
// about documents that are not decoded.
func objectName(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if ns, _ := md["namespace"].(string); ns != "" {
		return ns + "/" + name
	}
	return name
}

func (l *loader) notice(src Source, kind, name, msg string) {
	l.m.Notices = append(l.m.Notices, Problem{Source: src, Kind: kind, Name: name, Message: msg})
}

// istioKind is the entry of an Istio kind whose objects m keeps in the list
// that list returns: a new object gets the document's type and metadata,
// and its Spec (a proto message in every Istio client type) is what the
// document's spec is decoded into.
func istioKind[O any, P interface {
	*O
	runtime.Object
	metav1.ObjectMetaAccessor
}](versions []string, group string, list func(*Mesh) *[]P) kindDef {
	return kindDef{versions: versions, load: loadIstio(func(m *Mesh, tm metav1.TypeMeta, om metav1.ObjectMeta) proto.Message {
		o := P(new(O))
		*o.GetObjectKind().(*metav1.TypeMeta) = tm
		*o.GetObjectMeta().(*metav1.ObjectMeta) = om
		l := list(m)
		*l = append(*l, o)
		return reflect.ValueOf(o).Elem().FieldByName("Spec").Addr().Interface().(proto.Message)
	}, group)}
}
