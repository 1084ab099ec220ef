package translate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meshtls/meshtls/mesh"
)

// A Service's networking.istio.io/exportTo annotation decides which
// namespaces' proxies get its outbound cluster and listener
// (pilot/pkg/model/push_context.go, initServiceRegistry and
// IsServiceVisible).
func TestServiceExportTo(t *testing.T) {
	const workloads = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server, namespace: srv, labels: {app: server}}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: peer, namespace: srv}
spec: {ports: [{name: http, port: 8081}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: client}
spec: {ports: [{name: http, port: 8081}]}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: other, namespace: other}
spec: {ports: [{name: http, port: 8081}]}
`
	const cluster = "outbound|80||server.srv.svc.cluster.local"
	tests := []struct {
		annotation string // "" : none
		sees       []string
	}{
		{"", []string{"srv/peer", "client/client", "other/other"}},
		{".", []string{"srv/peer"}},
		{"*", []string{"srv/peer", "client/client", "other/other"}},
		{"client", []string{"client/client"}},
		{"client, srv", []string{"srv/peer", "client/client"}},
		{"~", nil},
		{"~,.", nil}, // none wins over everything but *
		{"~,*", []string{"srv/peer", "client/client", "other/other"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.annotation), func(t *testing.T) {
			ann := ""
			if tt.annotation != "" {
				ann = fmt.Sprintf("\n  annotations: {%q: %q}", mesh.ExportToAnnotation, tt.annotation)
			}
			svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: server
  namespace: srv%s
spec:
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, ann)
			m, err := mesh.Parse("exportto.yaml", []byte(workloads+"---\n"+svc))
			if err != nil {
				t.Fatal(err)
			}
			env := testEnv(t, m)
			for _, ref := range []string{"srv/peer", "client/client", "other/other"} {
				w, _ := m.Workload(ref)
				res, err := Translate(m, w, env)
				if err != nil {
					t.Fatal(err)
				}
				want := slices.Contains(tt.sees, ref)
				if got := slices.Contains(names(res.Clusters), cluster); got != want {
					t.Errorf("%s has %s: %v, want %v", ref, cluster, got, want)
				}
				if got := slices.Contains(names(res.Listeners), OutboundListenerName(80)); got != want {
					t.Errorf("%s has the outbound listener for port 80: %v, want %v", ref, got, want)
				}
			}
		})
	}
}
