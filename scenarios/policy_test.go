package scenarios

import (
	"testing"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
)

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
metadata: {name: bystander}
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
	plainOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	refused := harness.Options(harness.ExpectResult(outcome.Reset), harness.ExpectWire(outcome.Plaintext), harness.ExpectPeer(outcome.PeerNone))
	mtlsOK := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer(clientID))
	rows := []row{
		{
			// Two namespace-level policies: Istio keeps the oldest by
			// creationTimestamp, whatever the file (or name) order says.
			name:   "1-oldest_namespace_policy_wins",
			cite:   "pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication); pilot/pkg/model/authentication.go (addPeerAuthentication)",
			config: pa("default", "a-permissive", "2024-05-02T10:00:00Z", "PERMISSIVE") + pa("default", "b-strict", "2024-05-01T10:00:00Z", "STRICT"),
			calls: []callSpec{
				call("naked/http", "naked-client", serverHTTP, refused),
				call("sidecar/http", "client", serverHTTP, mtlsOK),
			},
		},
		{
			// Equal (here: absent) timestamps: name, then namespace, decides;
			// file order does not.
			name:   "1-tie_broken_by_name",
			cite:   "pilot/pkg/model/config.go (configCompareByCreationTime)",
			config: pa("default", "z-strict", "", "STRICT") + pa("default", "a-permissive", "", "PERMISSIVE"),
			calls: []callSpec{
				call("naked/http", "naked-client", serverHTTP, plainOK),
			},
		},
		{
			// Two rules for one host: Istio merges them into the oldest one:
			// its top-level trafficPolicy stays, the newer rule's subsets are
			// added. The route to subset v1 (defined only by the newer rule)
			// works, and uses the older rule's DISABLE.
			name: "2-rules_for_one_host_merge",
			cite: "pilot/pkg/model/destination_rule.go (mergeDestinationRule); pilot/pkg/model/push_context.go (setDestinationRules)",
			config: dr("z-old", "default", "2024-01-01T00:00:00Z", "host: server\n  trafficPolicy: {tls: {mode: DISABLE}}") +
				dr("a-new", "default", "2024-06-01T00:00:00Z", "host: server\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n  subsets: [{name: v1, labels: {app: server}}]") + `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: server, namespace: default}
spec:
  hosts: [server]
  http:
  - route:
    - destination: {host: server, subset: v1}
---
`,
			calls: []callSpec{
				call("subset-of-newer-rule", "client", serverHTTP, plainOK),
				call("tcp", "client", serverTCP, plainOK),
			},
		},
		{
			// A rule exported only to another namespace is not in its own
			// namespace's pool: clients there keep auto mTLS, clients of the
			// named namespace get the rule.
			name:   "3-exported_only_elsewhere",
			cite:   "pilot/pkg/model/push_context.go (setDestinationRules: namespaceLocal needs exportTo empty, *, . or the own namespace; getExportedDestinationRuleFromNamespace)",
			config: dr("server", "default", "", "host: server\n  exportTo: [other]\n  trafficPolicy: {tls: {mode: DISABLE}}"),
			calls: []callSpec{
				call("own-namespace", "client", serverHTTP, mtlsOK),
				call("named-namespace", "other/client", serverHTTP, plainOK),
			},
		},
		{
			// credentialName on a sidecar counts only in a DestinationRule
			// with a workloadSelector. Without one Istio builds no TLS
			// context: the cluster sends plaintext (to the server sidecar,
			// PERMISSIVE, that works). With one selecting the client, the
			// client originates MUTUAL with the credential, which the
			// server's PERMISSIVE inbound passes to the plain app: reset.
			name: "4-credentialName_needs_workloadSelector",
			cite: "pilot/pkg/networking/core/cluster_tls.go (buildUpstreamClusterTLSContext: credentialName on a sidecar without workloadSelector)",
			config: dr("server", "default", "", "host: server\n  trafficPolicy: {tls: {mode: MUTUAL, credentialName: server-client}}") +
				dr("server-sel", "other", "", "host: server.default.svc.cluster.local\n  workloadSelector: {matchLabels: {app: client}}\n  trafficPolicy: {tls: {mode: MUTUAL, credentialName: server-client}}"),
			calls: []callSpec{
				call("no-selector-plaintext", "client", serverTCP, plainOK),
				call("selector-originates", "other/client", serverTCP, harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS)),
			},
		},
		{
			// One rule with a workloadSelector, two sidecar clients of one
			// service in its namespace: the selected client originates
			// MUTUAL with the rule's credentialName (a sidecar honours it
			// only here), which the server's PERMISSIVE inbound passes to
			// the plain app (reset); the other client is not selected, so
			// no rule applies to it and it keeps auto mTLS.
			name:   "4-workloadSelector_selects_one_client",
			cite:   "pilot/pkg/model/push_context.go (destinationRule: rules whose workloadSelector matches the proxy); pilot/pkg/networking/core/cluster_tls.go (buildUpstreamClusterTLSContext: credentialName needs a workloadSelector)",
			config: dr("server-for-client", "default", "", "host: server\n  workloadSelector: {matchLabels: {app: client}}\n  trafficPolicy: {tls: {mode: MUTUAL, credentialName: server-client}}"),
			calls: []callSpec{
				call("selected-originates-MUTUAL", "client", serverTCP, harness.ExpectNotOK(), harness.ExpectWire(outcome.TLS)),
				call("not-selected-auto-mTLS", "bystander", serverTCP, harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.MTLS), harness.ExpectPeer("spiffe://cluster.local/ns/default/sa/bystander")),
			},
		},
	}
	runRows(t, policyWorkloads, rows)
}

// dr is a DestinationRule; spec is YAML indented by two spaces after its
// first line, created "" leaves creationTimestamp out.
func dr(name, ns, created, spec string) string {
	ts := ""
	if created != "" {
		ts = ", creationTimestamp: '" + created + "'"
	}
	return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ` + name + `, namespace: ` + ns + ts + `}
spec:
  ` + spec + `
---
`
}

// Gateway-side policy semantics, on the gateway tests' workloads.
func TestGatewayPolicySemantics(t *testing.T) {
	viaGateway := harness.Options(harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.Plaintext, outcome.MTLS), harness.ExpectPeer(gatewayID))
	rows := []row{
		{
			// A short gateway name in a route match names a Gateway in the
			// VirtualService's namespace, as the top-level list does.
			name: "9-short_gateway_name_in_match",
			cite: "pilot/pkg/model/virtualservice.go (ResolveVirtualServiceShortnames); pilot/pkg/model/config.go (resolveGatewayName)",
			config: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [b.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b.example.com]
  gateways: [gw]
  http:
  - match: [{gateways: [gw], uri: {prefix: /}}]
    route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
---
`,
			calls: []callSpec{
				call("routed", "outside/curl", "http://b.example.com/", harness.Via(ingress), viaGateway),
			},
		},
		{
			// Two Gateways claim b.example.com on port 443. Istio keeps the
			// older server (SIMPLE) and drops the newer one (MUTUAL), with a
			// warning, instead of refusing the config: a client without a
			// certificate gets through.
			name: "8-older_gateway_server_wins",
			cite: "pilot/pkg/model/gateway.go (mergeGateways, CheckDuplicates); istioctl analyze IST0145 (pkg/config/analysis/analyzers/gateway/conflictinggateway.go)",
			config: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: z-old, namespace: istio-system, creationTimestamp: '2024-01-01T00:00:00Z'}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: b-cred}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a-new, namespace: istio-system, creationTimestamp: '2024-06-01T00:00:00Z'}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: MUTUAL, credentialName: b-cred}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.example.com]
  gateways: [istio-system/z-old, istio-system/a-new]
  http:
  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8080}}}]
---
`,
			calls: []callSpec{
				call("no-client-cert", "outside/curl", "https://b.example.com/", harness.Via(ingress), harness.WithTLS(mesh.CheckTLS{CA: []string{"ingress"}}),
					harness.ExpectResult(outcome.OK), harness.ExpectWire(outcome.TLS, outcome.MTLS), harness.ExpectPeer(gatewayID)),
			},
		},
	}
	runRows(t, gatewayWorkloads, rows)
}
