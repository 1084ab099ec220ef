package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	meshconfig "istio.io/api/mesh/v1alpha1"
	networkingapi "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The mesh config: istiod reads the MeshConfig from the key `mesh` of the
// ConfigMap `istio` in its own namespace, istio-system by default, or
// `istio-<revision>` for a revisioned control plane
// (pilot/pkg/bootstrap/mesh.go, getMeshConfigMapName and
// getConfigurationSources; pkg/config/mesh/kubemesh/watcher.go,
// MeshConfigKey), and lays the YAML over its defaults
// (pkg/config/mesh/mesh.go, ApplyMeshConfigDefaults, DefaultMeshConfig).
// meshtls's one control plane stands in for every revision (as for
// injection, kube_inject.go): a bundle may carry istio and istio-<rev>
// ConfigMaps if their mesh configs agree. ConfigMaps of those names in other
// namespaces are not istiod's and are skipped with a notice, as every other
// ConfigMap.

const (
	meshConfigNamespace = "istio-system"
	meshConfigMapName   = "istio"
	meshConfigKey       = "mesh"
)

// MeshConfigSource is the mesh config a bundle gave: the ConfigMap it came
// from and its `mesh` YAML as written, which the oracle hands istiod.
type MeshConfigSource struct {
	Source Source
	Name   string // namespace/name of the ConfigMap
	YAML   string
}

// meshDefaults are the defaults of the MeshConfig fields meshtls models,
// as Istio's DefaultMeshConfig (pkg/config/mesh/mesh.go); a bundle's mesh
// YAML is merged over them as ApplyMeshConfig merges it (objects field by
// field, everything else replaced).
var meshDefaults = map[string]any{
	"enableAutoMtls":         true,
	"outboundTrafficPolicy":  map[string]any{"mode": "ALLOW_ANY"},
	"inboundTrafficPolicy":   map[string]any{"mode": "PASSTHROUGH"},
	"rootNamespace":          RootNamespace,
	"trustDomain":            TrustDomain,
	"proxyListenPort":        json.Number("15001"),
	"proxyInboundListenPort": json.Number("15006"),
}

var defaultMeshConfig = func() *meshconfig.MeshConfig {
	mc, err := decodeMeshConfig(nil)
	if err != nil {
		panic(err) // the defaults above are valid
	}
	return mc
}()

func decodeMeshConfig(tree map[string]any) (*meshconfig.MeshConfig, error) {
	js, err := json.Marshal(mergeJSON(meshDefaults, tree))
	if err != nil {
		return nil, err
	}
	mc := &meshconfig.MeshConfig{}
	return mc, protojson.Unmarshal(js, mc)
}

// mergeJSON lays over on base: objects merge key by key, anything else
// replaces.
func mergeJSON(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		bo, ok1 := out[k].(map[string]any)
		oo, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeJSON(bo, oo)
		} else {
			out[k] = v
		}
	}
	return out
}

// MeshConfig is the bundle's mesh config with Istio's defaults applied
// (Istio's defaults alone without one).
func (m *Mesh) MeshConfig() *meshconfig.MeshConfig {
	if m.meshConfig == nil {
		return defaultMeshConfig
	}
	return m.meshConfig
}

// Root is the mesh config's rootNamespace: where mesh-wide
// PeerAuthentications and DestinationRules live (Istio: push_context.go,
// the root namespace lookups; authn policy's root level).
func (m *Mesh) Root() string { return m.MeshConfig().GetRootNamespace() }

// AutoMTLS reports meshConfig.enableAutoMtls: without it, a client with no
// DestinationRule tls sends plaintext (cluster_traffic_policy.go).
func (m *Mesh) AutoMTLS() bool { return m.MeshConfig().GetEnableAutoMtls().GetValue() }

// OutboundTrafficPolicy is the outbound traffic policy of proxy w: where
// its calls to destinations outside the registry go (ALLOW_ANY:
// PassthroughCluster; REGISTRY_ONLY: BlackHoleCluster and HTTP 502). It is
// the mesh config's mode (pilot/pkg/model/sidecar.go, a SidecarScope
// without a Sidecar, or whose Sidecar sets none, takes
// meshConfig.outboundTrafficPolicy.mode); the Sidecar that applies to w
// overrides it. The translator asks this per proxy and nothing else.
func (m *Mesh) OutboundTrafficPolicy(w *Workload) *networkingapi.OutboundTrafficPolicy {
	// initSidecarScopeInternalIndexes: the Sidecar's own policy when it
	// sets one (validation refuses egressProxy, so the mode is all of it).
	if sc := m.SidecarFor(w); sc != nil && sc.Spec.GetOutboundTrafficPolicy() != nil {
		return &networkingapi.OutboundTrafficPolicy{Mode: sc.Spec.GetOutboundTrafficPolicy().GetMode()}
	}
	mode := networkingapi.OutboundTrafficPolicy_Mode(m.MeshConfig().GetOutboundTrafficPolicy().GetMode())
	return &networkingapi.OutboundTrafficPolicy{Mode: mode}
}

// AllowAny reports whether p lets calls to unknown destinations out.
func AllowAny(p *networkingapi.OutboundTrafficPolicy) bool {
	return p.GetMode() == networkingapi.OutboundTrafficPolicy_ALLOW_ANY
}

// isMeshConfigMap reports a ConfigMap istiod reads its mesh config from.
func isMeshConfigMap(ns, name string, data map[string]string) bool {
	if ns != meshConfigNamespace {
		return false
	}
	_, hasMesh := data[meshConfigKey]
	return name == meshConfigMapName || (strings.HasPrefix(name, meshConfigMapName+"-") && hasMesh)
}

func loadConfigMap(l *loader, d *doc) {
	cm, ok := decodeKube[corev1.ConfigMap](d)
	if !ok {
		return
	}
	if !isMeshConfigMap(d.meta.Namespace, d.meta.Name, cm.Data) {
		delete(l.m.Sources, "ConfigMap/"+d.name)
		why := "configuration files"
		if _, hasMesh := cm.Data[meshConfigKey]; hasMesh && (d.meta.Name == meshConfigMapName || strings.HasPrefix(d.meta.Name, meshConfigMapName+"-")) {
			why = fmt.Sprintf("istiod reads its mesh config from the ConfigMap %s (or %s-<revision>) in its own namespace, %s, only (pilot/pkg/bootstrap/mesh.go); move it there if it is meant as the mesh config",
				meshConfigMapName, meshConfigMapName, meshConfigNamespace)
		}
		l.notice(d.src, d.kind, d.name, "skipped: "+why)
		return
	}
	for _, k := range sortedKeys(cm.Data) {
		switch k {
		case meshConfigKey:
		case "meshNetworks":
			l.notice(d.src, d.kind, d.name, "data.meshNetworks: accepted, not modelled: every meshtls workload is on one network of one cluster")
		default:
			l.notice(d.src, d.kind, d.name, fmt.Sprintf("data.%s: skipped: istiod reads only the keys mesh and meshNetworks", k))
		}
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		l.notice(d.src, d.kind, d.name, fmt.Sprintf("binaryData.%s: skipped: istiod reads only data.mesh and data.meshNetworks", k))
	}
	y, ok := cm.Data[meshConfigKey]
	if !ok {
		l.notice(d.src, d.kind, d.name, "no data.mesh: Istio's default mesh config applies")
	}
	mc, tree := parseMeshConfig(y, d.rep)
	if mc == nil {
		return
	}
	l.checkMeshFields(d, tree, mc)
	src := &MeshConfigSource{Source: d.src, Name: d.name, YAML: y}
	if prev := l.m.MeshConfigSource; prev != nil {
		if !proto.Equal(l.m.meshConfig, mc) {
			d.rep("data.mesh", fmt.Sprintf("a second mesh config that differs from the one of ConfigMap %s (%s): meshtls runs one control plane for every revision; keep only the ConfigMap of the revision your workloads use", prev.Name, prev.Source))
		}
		return
	}
	l.m.MeshConfigSource, l.m.meshConfig = src, mc
}

// parseMeshConfig reads the mesh YAML strictly (every unknown field and
// enum value with its path under data.mesh; Istio would ignore an unknown
// field, which is most often a typo) and returns it with the defaults
// applied, and the fields as given.
func parseMeshConfig(y string, rep report) (*meshconfig.MeshConfig, map[string]any) {
	const path = "data.mesh"
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		rep(path, fmt.Sprintf("invalid YAML: %v", err))
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil && len(bytes.TrimSpace(js)) > 0 && string(bytes.TrimSpace(js)) != "null" {
		rep(path, fmt.Sprintf("invalid mesh config: %v", err))
		return nil, nil
	}
	tree, ok := v.(map[string]any)
	if v != nil && !ok {
		rep(path, fmt.Sprintf("expected a MeshConfig object (YAML), got %s", jsonTypeName(v)))
		return nil, nil
	}
	failed := false
	strict := func(field, msg string) { failed = true; rep(field, msg) }
	md := (&meshconfig.MeshConfig{}).ProtoReflect().Descriptor()
	checkProto(path, md, tree, strict)
	if failed {
		return nil, nil
	}
	normalizeDurations(path, md, tree, strict)
	if failed {
		return nil, nil
	}
	mc, err := decodeMeshConfig(tree)
	if err != nil {
		rep(path, err.Error())
		return nil, nil
	}
	return mc, tree
}

// meshRule says what meshtls does with one MeshConfig field a bundle sets.
// Every field of MeshConfig (and of its defaultConfig, a ProxyConfig) is in
// meshFields or proxyFields; TestMeshFieldsComplete keeps it so.
type meshRule struct {
	// modelled: translated; check may still refuse values meshtls cannot model.
	modelled bool
	// refuse, when set, reports a value that can change TLS or
	// reachability and that meshtls does not model ("" when it is Istio's
	// default or otherwise harmless).
	refuse func(mc *meshconfig.MeshConfig) string
	// notice is why a field that cannot change TLS or reachability in a
	// meshtls run is accepted without being translated.
	notice string
}

func modelled(check func(mc *meshconfig.MeshConfig) string) meshRule {
	return meshRule{modelled: true, refuse: check}
}

func noticed(why string) meshRule { return meshRule{notice: why} }

// refusedUnless refuses the field unless ok says its value changes nothing
// meshtls would have to model.
func refusedUnless(ok func(mc *meshconfig.MeshConfig) bool, why string) meshRule {
	return meshRule{refuse: func(mc *meshconfig.MeshConfig) string {
		if ok(mc) {
			return ""
		}
		return why
	}}
}

func refused(why string) meshRule {
	return refusedUnless(func(*meshconfig.MeshConfig) bool { return false }, why)
}

const (
	whyTelemetry     = "telemetry (metrics, tracing, access logs) does not change traffic"
	whyProxyProcess  = "a proxy process setting that does not change TLS or routing"
	whyControlPlane  = "how istiod and its agents talk to each other, not to workloads"
	whyOneCluster    = "meshtls runs one cluster on one network"
	whyIngress       = "Kubernetes Ingress resources, which meshtls refuses"
	whyTiming        = "a timing: meshtls's upstreams answer or refuse at once on its local network"
	whyAmbient       = "ambient mode (ztunnel, waypoints), which meshtls does not run"
	whyCertsDeployed = "how certificates are provisioned; meshtls issues its own from its CAs"
)

var meshFields = map[string]meshRule{
	"outboundTrafficPolicy": modelled(func(mc *meshconfig.MeshConfig) string {
		if mc.GetOutboundTrafficPolicy().GetMode() == meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY_DYNAMIC_DNS {
			return "ALLOW_ANY_DYNAMIC_DNS (a dynamic forward proxy for unknown hosts) is not modelled by meshtls; use ALLOW_ANY or REGISTRY_ONLY"
		}
		return ""
	}),
	"enableAutoMtls": modelled(nil),
	"rootNamespace": modelled(func(mc *meshconfig.MeshConfig) string {
		if mc.GetRootNamespace() == "" {
			return "must name a namespace (Istio's default is istio-system)"
		}
		return ""
	}),
	"trustDomain": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return mc.GetTrustDomain() == TrustDomain },
		"meshtls issues every identity in the trust domain cluster.local and does not model another; remove the field (the run then uses cluster.local)"),
	"trustDomainAliases": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return len(mc.GetTrustDomainAliases()) == 0 },
		"aliases widen the SPIFFE IDs sidecars accept (pilot/pkg/networking/plugin/authn/util.go) and meshtls does not model them; remove the field"),
	"meshMTLS": modelled(func(mc *meshconfig.MeshConfig) string {
		t := mc.GetMeshMTLS()
		if len(t.GetEcdhCurves()) > 0 {
			return "meshMTLS.ecdhCurves: Istio refuses this mesh config (\"mesh TLS does not support ECDH curves configuration\", pkg/config/validation/agent/validation.go); remove it"
		}
		return ""
	}),
	"tlsDefaults": modelled(nil),
	"inboundTrafficPolicy": refusedUnless(func(mc *meshconfig.MeshConfig) bool {
		return mc.GetInboundTrafficPolicy().GetMode() == meshconfig.MeshConfig_InboundTrafficPolicy_PASSTHROUGH
	}, "LOCALHOST sends inbound traffic to 127.0.0.1, which meshtls does not model; use PASSTHROUGH (Istio's default) or remove the field"),
	"defaultServiceExportTo": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return exportAll(mc.GetDefaultServiceExportTo()) },
		"a default exportTo other than * hides services from namespaces, which meshtls does not model; remove it or set exportTo on each Service"),
	"defaultVirtualServiceExportTo": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return exportAll(mc.GetDefaultVirtualServiceExportTo()) },
		"a default exportTo other than * hides VirtualServices from namespaces, which meshtls does not model; remove it or set exportTo on each VirtualService"),
	"defaultDestinationRuleExportTo": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return exportAll(mc.GetDefaultDestinationRuleExportTo()) },
		"a default exportTo other than * hides DestinationRules from namespaces, which meshtls does not model; remove it or set exportTo on each DestinationRule"),
	"proxyListenPort": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return mc.GetProxyListenPort() == 15001 },
		"meshtls captures outbound traffic to 15001 as istio-init does by default; remove the field"),
	"proxyInboundListenPort": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return mc.GetProxyInboundListenPort() == 15006 },
		"meshtls captures inbound traffic to 15006 as istio-init does by default; remove the field"),
	"proxyHttpPort": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return mc.GetProxyHttpPort() == 0 },
		"an HTTP proxy listener on every sidecar is a route meshtls does not model; remove the field"),
	"protocolDetectionTimeout": refusedUnless(func(mc *meshconfig.MeshConfig) bool { return mc.GetProtocolDetectionTimeout().AsDuration() == 0 },
		"a detection timeout changes what server-first protocols on auto-detected ports do, which meshtls does not model; remove it (Istio's default, 0s, disables it)"),
	"h2UpgradePolicy": refusedUnless(func(mc *meshconfig.MeshConfig) bool {
		return mc.GetH2UpgradePolicy() == meshconfig.MeshConfig_DO_NOT_UPGRADE
	}, "UPGRADE makes sidecars speak HTTP/2 to each other, which meshtls does not model; remove it"),
	"defaultHttpRetryPolicy":        refused("it changes whether a failing call is retried (and so succeeds), which meshtls does not model for the mesh default; remove it or set retries in a VirtualService"),
	"defaultInboundHttpRetryPolicy": refused("it changes whether a failing call is retried (and so succeeds), which meshtls does not model; remove it"),
	"defaultTrafficPolicy":          refused("a mesh-wide connection pool can reject calls, which meshtls does not model; remove it or set it in a DestinationRule"),
	"discoverySelectors":            refused("it hides namespaces from istiod, which meshtls does not model; remove it (the run then sees every namespace)"),
	"pathNormalization": refusedUnless(func(mc *meshconfig.MeshConfig) bool {
		return mc.GetPathNormalization().GetNormalization() <= meshconfig.MeshConfig_ProxyPathNormalization_BASE
	}, "merging or decoding slashes changes which route a path matches, which meshtls does not model; remove it (Istio's default is BASE)"),
	"caCertificates":         refused("extra trust anchors change which peers sidecars accept, which meshtls does not model; remove the field"),
	"serviceEntryVisibility": refused("it changes which ServiceEntries proxies see, which meshtls does not model; remove it"),

	"connectTimeout":              noticed(whyTiming),
	"hboneIdleTimeout":            noticed(whyAmbient),
	"tcpKeepalive":                noticed(whyTiming),
	"dnsRefreshRate":              noticed(whyTiming),
	"ingressClass":                noticed(whyIngress),
	"ingressService":              noticed(whyIngress),
	"ingressControllerMode":       noticed(whyIngress),
	"ingressSelector":             noticed(whyIngress),
	"enableTracing":               noticed(whyTelemetry),
	"accessLogFile":               noticed(whyTelemetry + " (meshtls writes its own access logs)"),
	"accessLogFormat":             noticed(whyTelemetry),
	"accessLogEncoding":           noticed(whyTelemetry),
	"enableEnvoyAccessLogService": noticed(whyTelemetry),
	"disableEnvoyListenerLog":     noticed(whyTelemetry),
	"extensionProviders":          noticed(whyTelemetry + "; providers for ext_authz are used only by AuthorizationPolicy, which meshtls refuses"),
	"defaultProviders":            noticed(whyTelemetry),
	"enablePrometheusMerge":       noticed(whyTelemetry),
	"inboundClusterStatName":      noticed(whyTelemetry),
	"outboundClusterStatName":     noticed(whyTelemetry),
	"configSources":               noticed("where istiod reads config; the bundle is meshtls's config"),
	"localityLbSetting":           noticed(noLocalities),
	"zoneAwareLbSetting":          noticed(noLocalities),
	"certificates":                noticed(whyCertsDeployed),
	"ca":                          noticed(whyCertsDeployed),
	"verifyCertificateAtClient":   noticed("deprecated; Istio verifies server certificates at the client by default"),
	"serviceSettings":             noticed("clusterLocal hosts: " + whyOneCluster),
	"serviceScopeConfigs":         noticed(whyAmbient),
	"defaultConfig":               {modelled: true}, // each field by proxyFields
}

func exportAll(to []string) bool { return len(to) == 0 || slices.Contains(to, "*") }

// proxyFields are defaultConfig's (ProxyConfig) fields.
var proxyFields = map[string]meshRule{
	"interceptionMode": refusedUnless(func(mc *meshconfig.MeshConfig) bool {
		return mc.GetDefaultConfig().GetInterceptionMode() == meshconfig.ProxyConfig_REDIRECT
	}, "meshtls captures traffic as istio-init's REDIRECT mode (the default); remove the field"),
	"runtimeValues":              refused("Envoy runtime flags can change any behaviour, and meshtls does not model them; remove the field"),
	"customConfigFile":           refused("a custom bootstrap replaces the proxy's config; remove the field"),
	"proxyBootstrapTemplatePath": refused("a custom bootstrap replaces the proxy's config; remove the field"),
	"proxyMetadata": refusedUnless(func(mc *meshconfig.MeshConfig) bool {
		for k := range mc.GetDefaultConfig().GetProxyMetadata() {
			if strings.HasPrefix(k, "ISTIO_META_DNS_") {
				return false
			}
		}
		return true
	}, "ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE make the sidecar answer DNS, which changes what ServiceEntry hosts resolve to and meshtls does not model; remove them"),

	"configPath":                      noticed(whyProxyProcess),
	"binaryPath":                      noticed(whyProxyProcess),
	"serviceCluster":                  noticed(whyTelemetry),
	"tracingServiceName":              noticed(whyTelemetry),
	"drainDuration":                   noticed(whyProxyProcess),
	"terminationDrainDuration":        noticed(whyProxyProcess),
	"discoveryAddress":                noticed(whyControlPlane),
	"discoveryRefreshDelay":           noticed(whyControlPlane),
	"controlPlaneAuthPolicy":          noticed(whyControlPlane),
	"caCertificatesPem":               noticed(whyControlPlane),
	"sds":                             noticed(whyControlPlane),
	"zipkinAddress":                   noticed(whyTelemetry),
	"statsdUdpAddress":                noticed(whyTelemetry),
	"envoyMetricsServiceAddress":      noticed(whyTelemetry),
	"envoyAccessLogService":           noticed(whyTelemetry),
	"envoyMetricsService":             noticed(whyTelemetry),
	"tracing":                         noticed(whyTelemetry),
	"extraStatTags":                   noticed(whyTelemetry),
	"proxyStatsMatcher":               noticed(whyTelemetry),
	"statNameLength":                  noticed(whyTelemetry),
	"statsCompression":                noticed(whyTelemetry),
	"fileFlushInterval":               noticed(whyTelemetry),
	"fileFlushMinSizeKb":              noticed(whyTelemetry),
	"proxyAdminPort":                  noticed(whyProxyProcess),
	"statusPort":                      noticed(whyProxyProcess),
	"readinessProbe":                  noticed(whyProxyProcess),
	"holdApplicationUntilProxyStarts": noticed("meshtls starts each app after its sidecar's config is acknowledged anyway"),
	"concurrency":                     noticed(whyProxyProcess),
	"image":                           noticed(whyProxyProcess),
	"privateKeyProvider":              noticed("where the proxy keeps its key, not which certificate it presents"),
	"availabilityZone":                noticed(noLocalities),
	"meshId":                          noticed(whyOneCluster),
	"gatewayTopology":                 noticed("forwarded-header handling at gateways, not TLS or routing"),
	"proxyHeaders":                    noticed("headers the proxy adds or strips, not TLS or routing"),
	"connectionSettings":              noticed(whyTiming),
}

// checkMeshFields applies meshFields to every field the mesh YAML sets.
func (l *loader) checkMeshFields(d *doc, tree map[string]any, mc *meshconfig.MeshConfig) {
	apply := func(path string, rule meshRule, ok bool) {
		switch {
		case !ok:
			d.rep(path, "not known to meshtls; it cannot say whether the field changes traffic, so it refuses it: remove the field")
		case rule.refuse != nil:
			if why := rule.refuse(mc); why != "" {
				d.rep(path, "not supported by meshtls: "+why)
			}
		case rule.notice != "":
			l.notice(d.src, d.kind, d.name, path+": accepted, not modelled: "+rule.notice)
		}
	}
	walk := func(path string, obj map[string]any, md protoreflect.MessageDescriptor, rules map[string]meshRule) {
		for _, k := range sortedKeys(obj) {
			name := k // protojson also takes a field's proto name (snake_case)
			if fd := md.Fields().ByTextName(k); fd != nil {
				name = fd.JSONName()
			}
			rule, ok := rules[name]
			apply(path+"."+name, rule, ok)
		}
	}
	md := mc.ProtoReflect().Descriptor()
	walk("data.mesh", tree, md, meshFields)
	pc, _ := tree["defaultConfig"].(map[string]any)
	if pc == nil {
		pc, _ = tree["default_config"].(map[string]any)
	}
	walk("data.mesh.defaultConfig", pc, md.Fields().ByJSONName("defaultConfig").Message(), proxyFields)
}
