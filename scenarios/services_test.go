package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/outcome"
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
	rows := []row{
		// Subsets route by the workloads' labels; the VirtualService binds
		// to the Service's host, so both protocols go to v2 every time.
		{name: "subset_routing", cite: "https://istio.io/latest/docs/concepts/traffic-management/#destination-rules; pilot/pkg/networking/core/listener.go, httproute.go",
			config: reviewsToV2,
			calls: []callSpec{
				call("http-by-name", "client", "http://reviews/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectServedBy("reviews-v2")),
				call("http-again", "client", "http://reviews.default.svc.cluster.local/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectServedBy("reviews-v2")),
				call("tcp", "client", "tcp://reviews:9000",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectServedBy("reviews-v2")),
				call("tcp-again", "client", "tcp://reviews.default:9000",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID), harness.ExpectServedBy("reviews-v2")),
				// No sidecar, no VirtualService: kube-proxy's DNAT picks an
				// endpoint, and the sidecar there takes plaintext (PERMISSIVE).
				call("plain-client-http", "plain", "http://reviews/",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
				call("plain-client-tcp", "plain", "tcp://reviews:9000",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone)),
			}},
		// STRICT on the endpoints: the plain client's DNATed connection is
		// refused in some way, the sidecar's mTLS one is not.
		{name: "strict", cite: "https://istio.io/latest/docs/reference/config/security/peer_authentication/",
			config: meshPA("STRICT"),
			calls: []callSpec{
				call("sidecar-client", "client", "tcp://reviews:9000",
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID)),
				call("plain-client", "plain", "tcp://reviews:9000", harness.ExpectNotOK()),
			}},
	}
	runRows(t, servicesWorkloads, rows)
}
