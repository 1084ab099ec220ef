package mesh

import (
	"strings"
	"testing"
)

const configBase = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, labels: {app: b, version: v1}}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec:
  selector: {app: b}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: a-to-b}
spec: {from: a, to: 'http://b/'}
`

const strictPA = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`

func TestWithConfig(t *testing.T) {
	base := mustParse(t, configBase)
	m, err := base.WithConfig("row.yaml", []byte(strictPA))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Workloads) != 2 || len(m.Services) != 2 || len(m.PeerAuthentications) != 1 || len(m.Checks) != 0 {
		t.Fatalf("workloads %d, services %d, PAs %d, checks %d: want the bundle's 2 workloads and 2 Services (a's implied), the PA, no check",
			len(m.Workloads), len(m.Services), len(m.PeerAuthentications), len(m.Checks))
	}
	if src := m.Sources["PeerAuthentication/istio-system/default"]; src.File != "row.yaml" || src.Index != 0 {
		t.Errorf("the applied document's source = %v, want row.yaml (document 1)", src)
	}

	// A second call replaces the first one's config.
	dr := "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec: {host: b, trafficPolicy: {tls: {mode: DISABLE}}}\n"
	m2, err := m.WithConfig("row2.yaml", []byte(dr))
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.PeerAuthentications) != 0 || len(m2.DestinationRules) != 1 {
		t.Errorf("second WithConfig: PAs %d, DRs %d; want 0 and 1 (the earlier config replaced)", len(m2.PeerAuthentications), len(m2.DestinationRules))
	}
	// Nothing applied: the bundle's config only.
	if m3, err := m2.WithConfig("empty.yaml", nil); err != nil || len(m3.DestinationRules) != 0 || len(m3.Workloads) != 2 {
		t.Errorf("empty config: %v, %+v", err, m3)
	}
	// A Service selecting b takes away nothing from the workloads.
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: b-v1}\nspec: {selector: {app: b, version: v1}, ports: [{name: http, port: 8080}]}\n"
	if m4, err := base.WithConfig("svc.yaml", []byte(svc)); err != nil || len(m4.Services) != 3 {
		t.Errorf("a Service as config: %v", err)
	}
}

// Applied config is validated as the loader validates a bundle: the same
// problems in the same words.
func TestWithConfigValidatesAsLoad(t *testing.T) {
	bad := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b, trafficPolicy: {tls: {mode: SIMPLEST}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}, colour: blue}
`
	_, applied := mustParse(t, configBase).WithConfig("row.yaml", []byte(bad))
	_, loaded := Parse("row.yaml", []byte(bad))
	if applied == nil || loaded == nil {
		t.Fatalf("applied: %v, loaded: %v; want both refused", applied, loaded)
	}
	if applied.Error() != loaded.Error() {
		t.Errorf("WithConfig and Parse word the same problems differently:\n%s\n---\n%s", applied, loaded)
	}
	// A problem that needs the bundle: a Service whose named target port
	// no selected workload has.
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: b2}\nspec: {selector: {app: b}, ports: [{name: http, port: 80, targetPort: web}]}\n"
	_, err := mustParse(t, configBase).WithConfig("svc.yaml", []byte(svc))
	if err == nil || !strings.Contains(err.Error(), `svc.yaml (document 1) Service default/b2: spec.ports[0].targetPort: named port "web"`) {
		t.Errorf("Service against the bundle's workloads: %v", err)
	}
}

func TestWithConfigRefusesPodsAndChecks(t *testing.T) {
	base := mustParse(t, configBase)
	for _, tc := range []struct{ doc, want string }{
		{"apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: c}\n", "row.yaml (document 1) Workload c: kind: not config: it declares a pod"},
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: c}\nspec: {}\n", "Deployment c: kind: not config: it declares pods"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "Namespace x: kind: not config: its labels decide"},
		{"apiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: {from: a, to: 'http://b/'}\n", "Check c: kind: not config: a Check is a call; make it with Runtime.Call"},
	} {
		_, err := base.WithConfig("row.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", strings.SplitN(tc.doc, "\n", 3)[1], err, tc.want)
		}
	}
	if _, err := (&Mesh{}).WithConfig("row.yaml", []byte(strictPA)); err == nil || !strings.Contains(err.Error(), "built in Go") {
		t.Errorf("a Mesh built in Go: %v", err)
	}
}

// ConfigKinds names every kind of the kinds table WithConfig takes.
func TestConfigKinds(t *testing.T) {
	var took []string
	for _, k := range sortedKeys(kinds) {
		if _, no := notConfig[k]; !no && k != "Check" {
			took = append(took, k)
		}
	}
	for _, k := range took {
		if !strings.Contains(ConfigKinds, k) {
			t.Errorf("ConfigKinds misses %s", k)
		}
	}
	if n := strings.Count(ConfigKinds, ",") + 1; n != len(took) {
		t.Errorf("ConfigKinds names %d kinds, WithConfig takes %d: %v", n, len(took), took)
	}
}
