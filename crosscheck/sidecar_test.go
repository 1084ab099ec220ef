package crosscheck

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Sidecar scoping agrees with istiod's in the corners bundle 19 does not
// reach: ServiceEntry hosts under wildcard and excluded egress hosts, a
// hostname in two namespaces (the proxy's own wins), a VirtualService of
// another namespace (not taken by "./*"), a route limited to another
// sourceNamespace (its destination not taken), two Sidecars without
// selector in one namespace (the oldest applies), a Service exported to
// one namespace only (pilot/pkg/model/sidecar.go, virtualservice.go,
// push_context.go). Every behavioural line of every proxy must agree.
func TestSidecarScopeMatchesIstiod(t *testing.T) {
	oracle := oracleForTest(t)
	const pods = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: cart, namespace: shop, labels: {app: cart}}
spec: {ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a, namespace: web, labels: {app: a}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: web, labels: {app: b}}
spec: {ports: [{name: http-b, port: 8081}, {name: tcp, port: 9000}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: c, namespace: other, labels: {app: c}}
spec: {ports: [{name: http, port: 8080}]}
`
	se := func(name, ns, host string, port int, proto string) string {
		res := "DNS"
		if host[0] == '*' {
			res = "NONE"
		}
		return "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: " + name + ", namespace: " + ns +
			"}\nspec:\n  hosts: ['" + host + "']\n  location: MESH_EXTERNAL\n  resolution: " + res + "\n  ports: [{number: " + strconv.Itoa(port) + ", name: p, protocol: " + proto + "}]\n"
	}
	bundles := map[string]string{
		"se-wildcards.yaml": pods + se("wild", "ext", "*.example.com", 443, "TLS") + se("api", "ext", "api.example.com", 443, "TLS") +
			se("db", "ext", "db.internal", 5432, "TCP") + se("mail", "ext", "mail.example.org", 25, "TCP") + `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*", "*/*.example.com", "*/*.internal", "~ext/db.internal", "web/b.web.svc.cluster.local"]
`,
		"same-host-two-namespaces.yaml": pods + se("api", "shop", "api.example.com", 443, "TLS") + se("api", "ext", "api.example.com", 8443, "TLS") + `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["*/api.example.com"]
`,
		"virtualservices.yaml": pods + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: from-web, namespace: web}
spec:
  hosts: [cart.shop.svc.cluster.local]
  http:
  - route: [{destination: {host: a.web.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - match: [{sourceNamespace: other}]
    route: [{destination: {host: c.other.svc.cluster.local}}]
  - match: [{uri: {prefix: /b}}]
    route: [{destination: {host: b.web.svc.cluster.local, port: {number: 8081}}}]
  - route: [{destination: {host: cart}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec:
  egress:
  - hosts: ["shop/*"]
`,
		"oldest-default-and-exportto.yaml": pods + `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a-new, namespace: shop, creationTimestamp: '2024-06-01T00:00:00Z'}
spec:
  egress:
  - hosts: ["*/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: z-old, namespace: shop, creationTimestamp: '2024-01-01T00:00:00Z'}
spec:
  egress:
  - hosts: ["web/*", "~web/a.web.svc.cluster.local"]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: web, annotations: {networking.istio.io/exportTo: other}}
spec:
  selector: {app: b}
  ports: [{name: http-b, port: 8081}, {name: tcp, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: root, namespace: istio-system}
spec:
  egress:
  - hosts: ["web/*"]
`,
	}
	diffs := diffBundles(t, oracle, t.TempDir(), bundles)
	for _, d := range diffs {
		if d.Behaviour {
			t.Errorf("%s", d)
		}
	}
}

// diffBundles writes each bundle (file name to text) to dir and compares
// meshtls with istiod on all of them.
func diffBundles(t *testing.T, oracle, dir string, bundles map[string]string) []Difference {
	t.Helper()
	var files []string
	for name, text := range bundles {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	diffs, err := Diff(context.Background(), files, Options{Oracle: oracle}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return diffs
}
