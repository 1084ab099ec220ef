package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/mesh"
)

// Services as Kubernetes has them: one Service in front of two Deployments
// (v1 and v2), a cluster IP from the run's own network, sidecars routing by
// that IP with the VirtualService's subsets for HTTP and TCP, and a pod
// without sidecar reaching the cluster IP through kube-proxy's DNAT, which
// no VirtualService applies to.
// Sources: pilot/pkg/networking/core/listener.go (buildSidecarOutboundListener:
// TCP services bound to the service address), httproute.go
// (generateVirtualHostDomains), https://istio.io/latest/docs/concepts/traffic-management/#virtual-services
// and #destination-rules (subsets), https://kubernetes.io/docs/reference/networking/virtual-ips/.

const servicesWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: plain}
spec:
  sidecar: false
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}
spec:
  serviceAccount: reviews
  ports: [{name: http, port: 9080}, {name: tcp, port: 9000}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v2, labels: {app: reviews, version: v2}}
spec:
  serviceAccount: reviews
  ports: [{name: http, port: 9080}, {name: tcp, port: 9000}]
---
# One Service for both versions: neither Deployment gets an implied Service.
# The clusterIP is a cluster's, recorded and never dialled.
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  clusterIP: 10.96.12.34
  selector: {app: reviews}
  ports:
  - {name: http, port: 80, targetPort: 9080}
  - {name: tcp-db, port: 9000}
`

// reviewsToV2 sends HTTP and TCP to subset v2.
const reviewsToV2 = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
  tcp:
  - route: [{destination: {host: reviews.default.svc.cluster.local, port: {number: 9000}, subset: v2}}]
---
`

func TestServices(t *testing.T) {
	served := func(e mesh.Expect, id string) mesh.Expect { e.ServedBy = id; return e }
	rows := []row{
		// Subsets route by the workloads' labels; the VirtualService binds
		// to the Service's host, so both protocols go to v2 every time.
		{name: "subset_routing", cite: "https://istio.io/latest/docs/concepts/traffic-management/#destination-rules; pilot/pkg/networking/core/listener.go, httproute.go",
			config: reviewsToV2,
			checks: []check{
				{name: "http-by-name", from: "client", to: "http://reviews/", want: served(expect("ok", w("mtls"), clientID, ""), "reviews-v2")},
				{name: "http-again", from: "client", to: "http://reviews.default.svc.cluster.local/", want: served(expect("ok", w("mtls"), clientID, ""), "reviews-v2")},
				{name: "tcp", from: "client", to: "tcp://reviews:9000", want: served(expect("ok", w("mtls"), clientID, ""), "reviews-v2")},
				{name: "tcp-again", from: "client", to: "tcp://reviews.default:9000", want: served(expect("ok", w("mtls"), clientID, ""), "reviews-v2")},
				// No sidecar, no VirtualService: kube-proxy's DNAT picks an
				// endpoint, and the sidecar there takes plaintext (PERMISSIVE).
				{name: "plain-client-http", from: "plain", to: "http://reviews/", want: expect("ok", w("plaintext"), "none", "")},
				{name: "plain-client-tcp", from: "plain", to: "tcp://reviews:9000", want: expect("ok", w("plaintext"), "none", "")},
			}},
		// STRICT on the endpoints: the plain client's DNATed connection is
		// refused in some way, the sidecar's mTLS one is not.
		{name: "strict", cite: "https://istio.io/latest/docs/reference/config/security/peer_authentication/",
			config: meshPA("STRICT"),
			checks: []check{
				{name: "sidecar-client", from: "client", to: "tcp://reviews:9000", want: expect("ok", w("mtls"), clientID, "")},
				{name: "plain-client", from: "plain", to: "tcp://reviews:9000", want: expect("fail", nil, "", "")},
			}},
	}
	runRows(t, servicesWorkloads, rows)
}
