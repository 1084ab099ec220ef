package scenarios

import "testing"

// Policy semantics Istio applies before any TLS setting is read: the order
// of same-level resources, DestinationRule merging, lookup and exportTo,
// workloadSelector, ServiceEntry SANs, gateway conflicts and gateway names.

const policyWorkloads = `
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: naked-client}
spec:
  sidecar: false
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: other}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: server}
spec:
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
`

// pa is a namespace- or mesh-level PeerAuthentication with a creation time
// ("" leaves it out).
func pa(ns, name, created, mode string) string {
	ts := ""
	if created != "" {
		ts = ", creationTimestamp: '" + created + "'"
	}
	return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ` + name + `, namespace: ` + ns + ts + `}
spec:
  mtls: {mode: ` + mode + `}
---
`
}

func TestPolicySemantics(t *testing.T) {
	plainOK := expect("ok", w("plaintext"), "none", "")
	refused := expect("reset", w("plaintext"), "none", "")
	mtlsOK := expect("ok", w("mtls"), clientID, "")
	rows := []row{
		{
			// Two namespace-level policies: Istio keeps the oldest by
			// creationTimestamp, whatever the file (or name) order says.
			name:   "1-oldest_namespace_policy_wins",
			cite:   "pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication); pilot/pkg/model/authentication.go (addPeerAuthentication)",
			config: pa("default", "a-permissive", "2024-05-02T10:00:00Z", "PERMISSIVE") + pa("default", "b-strict", "2024-05-01T10:00:00Z", "STRICT"),
			checks: []check{
				{name: "naked/http", from: "naked-client", to: serverHTTP, want: refused},
				{name: "sidecar/http", from: "client", to: serverHTTP, want: mtlsOK},
			},
		},
		{
			// Equal (here: absent) timestamps: name, then namespace, decides;
			// file order does not.
			name:   "1-tie_broken_by_name",
			cite:   "pilot/pkg/model/config.go (configCompareByCreationTime)",
			config: pa("default", "z-strict", "", "STRICT") + pa("default", "a-permissive", "", "PERMISSIVE"),
			checks: []check{
				{name: "naked/http", from: "naked-client", to: serverHTTP, want: plainOK},
			},
		},
	}
	runRows(t, policyWorkloads, rows)
}
