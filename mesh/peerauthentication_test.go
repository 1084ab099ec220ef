package mesh

import "testing"

func TestEffectiveMTLS(t *testing.T) {
	base := `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: ns, labels: {app: b}}
spec: {ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: r, namespace: istio-system, labels: {app: r}}
`
	pa := func(name, ns, body string) string {
		return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + body + "\n"
	}
	for _, tc := range []struct {
		name         string
		policies     string
		wl           string
		port         uint32
		want, nsWant MTLSMode
	}{
		{"none", "", "ns/b", 8080, ModePermissive, ModePermissive},
		{"mesh strict", pa("m", "istio-system", "{mtls: {mode: STRICT}}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"mesh unset", pa("m", "istio-system", "{mtls: {mode: UNSET}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"ns beats mesh", pa("m", "istio-system", "{mtls: {mode: STRICT}}") + pa("nsp", "ns", "{mtls: {mode: DISABLE}}"), "ns/b", 8080, ModeDisable, ModeDisable},
		{"ns unset inherits mesh", pa("m", "istio-system", "{mtls: {mode: STRICT}}") + pa("nsp", "ns", "{}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"other ns ignored", pa("nsp", "other", "{mtls: {mode: DISABLE}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"workload beats ns", pa("nsp", "ns", "{mtls: {mode: STRICT}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: PERMISSIVE}}"), "ns/b", 8080, ModePermissive, ModeStrict},
		{"workload not matching", pa("nsp", "ns", "{mtls: {mode: STRICT}}") + pa("w", "ns", "{selector: {matchLabels: {app: c}}, mtls: {mode: DISABLE}}"), "ns/b", 8080, ModeStrict, ModeStrict},
		{"port level", pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: DISABLE}}}"), "ns/b", 9000, ModeDisable, ModePermissive},
		{"port level other port", pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: DISABLE}}}"), "ns/b", 8080, ModeStrict, ModePermissive},
		{"port level unset inherits workload", pa("nsp", "ns", "{mtls: {mode: DISABLE}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}, portLevelMtls: {9000: {mode: UNSET}}}"), "ns/b", 9000, ModeStrict, ModeDisable},
		{"workload unset inherits ns", pa("nsp", "ns", "{mtls: {mode: DISABLE}}") + pa("w", "ns", "{selector: {matchLabels: {app: b}}, portLevelMtls: {9000: {mode: STRICT}}}"), "ns/b", 8080, ModeDisable, ModeDisable},
		{"first workload policy wins", pa("w1", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: DISABLE}}") + pa("w2", "ns", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}}"), "ns/b", 8080, ModeDisable, ModePermissive},
		{"root selector policy ignored", pa("w", "istio-system", "{selector: {matchLabels: {app: b}}, mtls: {mode: STRICT}}"), "ns/b", 8080, ModePermissive, ModePermissive},
		{"root selector policy ignored in root", pa("w", "istio-system", "{selector: {matchLabels: {app: r}}, mtls: {mode: STRICT}}"), "istio-system/r", 8080, ModePermissive, ModePermissive},
		{"root ns workload mesh policy", pa("m", "istio-system", "{mtls: {mode: DISABLE}}"), "istio-system/r", 8080, ModeDisable, ModeDisable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, base+tc.policies)
			w, ok := m.Workload(tc.wl)
			if !ok {
				t.Fatalf("no workload %s", tc.wl)
			}
			if got := m.EffectiveMTLS(w, tc.port); got != tc.want {
				t.Errorf("EffectiveMTLS = %s, want %s", got, tc.want)
			}
			if got := m.NamespaceMTLS(w.Namespace); got != tc.nsWant {
				t.Errorf("NamespaceMTLS = %s, want %s", got, tc.nsWant)
			}
		})
	}
}
