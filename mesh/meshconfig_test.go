package mesh

import (
	"strings"
	"testing"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networkingapi "istio.io/api/networking/v1alpha3"
)

func meshCM(ns, name, mesh string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: " + ns + "}\ndata:\n  mesh: |\n" + indent(mesh, "    ") + "---\n"
}

func indent(s, by string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(by + l + "\n")
	}
	return b.String()
}

const oneWorkload = "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n"

func TestMeshConfigDefaults(t *testing.T) {
	m := mustParse(t, oneWorkload)
	if !AllowAny(m.OutboundTrafficPolicy(m.Workloads[0])) || !m.AutoMTLS() || m.Root() != "istio-system" {
		t.Errorf("defaults: allowAny %v autoMTLS %v root %q", AllowAny(m.OutboundTrafficPolicy(m.Workloads[0])), m.AutoMTLS(), m.Root())
	}
	// An empty outboundTrafficPolicy object merges over the default, as
	// ApplyMeshConfig's merge does: ALLOW_ANY stays.
	m = mustParse(t, meshCM("istio-system", "istio", "outboundTrafficPolicy: {}\n")+oneWorkload)
	if !AllowAny(m.OutboundTrafficPolicy(m.Workloads[0])) {
		t.Errorf("outboundTrafficPolicy {} must keep ALLOW_ANY")
	}
}

func TestMeshConfigModelled(t *testing.T) {
	m := mustParse(t, meshCM("istio-system", "istio", "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\nenableAutoMtls: false\nrootNamespace: mesh-root\naccessLogFile: /dev/stdout\ndefaultConfig:\n  concurrency: 2\n")+oneWorkload)
	if got := m.OutboundTrafficPolicy(m.Workloads[0]).GetMode(); got != networkingapi.OutboundTrafficPolicy_REGISTRY_ONLY {
		t.Errorf("mode = %v", got)
	}
	if m.AutoMTLS() || m.Root() != "mesh-root" {
		t.Errorf("autoMTLS %v root %q", m.AutoMTLS(), m.Root())
	}
	if m.MeshConfigSource == nil || m.MeshConfigSource.Name != "istio-system/istio" || !strings.Contains(m.MeshConfigSource.YAML, "REGISTRY_ONLY") {
		t.Errorf("source = %+v", m.MeshConfigSource)
	}
	var notes []string
	for _, n := range m.Notices {
		notes = append(notes, n.String())
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{"data.mesh.accessLogFile: accepted, not modelled", "data.mesh.defaultConfig.concurrency: accepted, not modelled"} {
		if !strings.Contains(all, want) {
			t.Errorf("notices lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "outboundTrafficPolicy") || strings.Contains(all, "skipped") {
		t.Errorf("a modelled field or the mesh ConfigMap got a notice:\n%s", all)
	}
}

func TestMeshConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, y, want string }{
		{"typo", meshCM("istio-system", "istio", "outboundTraficPolicy: {mode: REGISTRY_ONLY}\n"), `test.yaml (document 1) ConfigMap istio-system/istio: data.mesh.outboundTraficPolicy: unknown field "outboundTraficPolicy"`},
		{"enum", meshCM("istio-system", "istio", "outboundTrafficPolicy: {mode: BLOCK}\n"), `data.mesh.outboundTrafficPolicy.mode: unknown value "BLOCK" (allowed: REGISTRY_ONLY, ALLOW_ANY`},
		{"dynamic dns", meshCM("istio-system", "istio", "outboundTrafficPolicy: {mode: ALLOW_ANY_DYNAMIC_DNS}\n"), "data.mesh.outboundTrafficPolicy: not supported by meshtls: ALLOW_ANY_DYNAMIC_DNS"},
		{"trust domain", meshCM("istio-system", "istio", "trustDomain: example.com\n"), "data.mesh.trustDomain: not supported by meshtls"},
		{"runtime", meshCM("istio-system", "istio", "defaultConfig:\n  runtimeValues: {a: b}\n"), "data.mesh.defaultConfig.runtimeValues: not supported by meshtls"},
		{"ecdh", meshCM("istio-system", "istio", "meshMTLS: {ecdhCurves: [P-256]}\n"), "mesh TLS does not support ECDH curves"},
		{"duration", meshCM("istio-system", "istio", "connectTimeout: soon\n"), `data.mesh.connectTimeout: invalid duration "soon"`},
		{"not yaml", meshCM("istio-system", "istio", "[a\n"), "data.mesh: invalid YAML"},
		{"two revisions", meshCM("istio-system", "istio", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n") + meshCM("istio-system", "istio-canary", "{}\n"),
			"ConfigMap istio-system/istio-canary: data.mesh: a second mesh config that differs from the one of ConfigMap istio-system/istio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.y+oneWorkload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMeshConfigMapNames(t *testing.T) {
	// A revision's ConfigMap alone is the mesh config; the same config twice is fine.
	m := mustParse(t, meshCM("istio-system", "istio-canary", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")+meshCM("istio-system", "istio", "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")+oneWorkload)
	if AllowAny(m.OutboundTrafficPolicy(m.Workloads[0])) {
		t.Errorf("istio-canary's REGISTRY_ONLY not applied")
	}
	// Not istiod's namespace, or not a mesh config: skipped with a notice.
	m = mustParse(t, meshCM("default", "istio", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-ca-root-cert, namespace: istio-system}\ndata: {root-cert.pem: x}\n---\n"+oneWorkload)
	if !AllowAny(m.OutboundTrafficPolicy(m.Workloads[0])) || m.MeshConfigSource != nil {
		t.Errorf("a ConfigMap istio outside istio-system was read")
	}
	if len(m.Notices) != 2 || !strings.Contains(m.Notices[0].Message, "in its own namespace, istio-system") || m.Notices[1].Message != "skipped: configuration files" {
		t.Errorf("notices = %v", m.Notices)
	}
}

// Every MeshConfig and ProxyConfig field is modelled, refused or noticed:
// a field added to istio.io/api must be decided, not fall through.
func TestMeshFieldsComplete(t *testing.T) {
	check := func(what string, rules map[string]meshRule, names func(func(string))) {
		seen := map[string]bool{}
		names(func(n string) {
			seen[n] = true
			if _, ok := rules[n]; !ok {
				t.Errorf("%s field %s has no rule", what, n)
			}
		})
		for n := range rules {
			if !seen[n] {
				t.Errorf("%s rule %s names no field", what, n)
			}
		}
	}
	mc := (&meshconfig.MeshConfig{}).ProtoReflect().Descriptor()
	check("MeshConfig", meshFields, func(f func(string)) {
		for i := 0; i < mc.Fields().Len(); i++ {
			f(mc.Fields().Get(i).JSONName())
		}
	})
	pc := (&meshconfig.ProxyConfig{}).ProtoReflect().Descriptor()
	check("ProxyConfig", proxyFields, func(f func(string)) {
		for i := 0; i < pc.Fields().Len(); i++ {
			f(pc.Fields().Get(i).JSONName())
		}
	})
}
