package mesh_test

import (
	"fmt"

	"github.com/meshtls/meshtls/mesh"
)

const bundle = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: a-to-b}
spec:
  from: a
  to: http://b.default.svc.cluster.local:8080/
  expect: {result: ok, wire: [mtls], peer: spiffe://cluster.local/ns/default/sa/a}
`

// Parse loads a bundle: workloads (each with the Service Kubernetes would
// give it), Istio config and checks.
func ExampleParse() {
	m, err := mesh.Parse("bundle.yaml", []byte(bundle))
	if err != nil {
		panic(err)
	}
	for _, w := range m.Workloads {
		fmt.Println("workload", w.ID(), w.Identity())
	}
	for _, s := range m.Services {
		fmt.Println("service", s.Hostname())
	}
	fmt.Println("peer authentication", m.PeerAuthentications[0].Name, m.PeerAuthentications[0].Spec.GetMtls().GetMode())
	c := m.Checks[0]
	fmt.Println("check", c.Name, c.From, "->", c.To, c.Expect.Result, c.Expect.Wire)
	// Output:
	// workload default/a spiffe://cluster.local/ns/default/sa/a
	// workload default/b spiffe://cluster.local/ns/default/sa/b
	// service a.default.svc.cluster.local
	// service b.default.svc.cluster.local
	// peer authentication default STRICT
	// check a-to-b a -> http://b.default.svc.cluster.local:8080/ ok [mtls]
}

// Every problem of a bundle is reported at once, each naming the file,
// the document, the kind and name, the field and what is allowed.
func ExampleParse_invalid() {
	_, err := mesh.Parse("bug.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: b
  trafficPolicy:
    tls: {mode: ISTIO_MUTAL}
---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: a-to-b}
spec: {from: a, to: 'http://b:8080/', expect: {result: okay}}
`))
	fmt.Println(err)
	// Output:
	// bug.yaml (document 1) DestinationRule default/b: spec.trafficPolicy.tls.mode: unknown value "ISTIO_MUTAL" (allowed: DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL)
	// bug.yaml (document 2) Check default/a-to-b: spec.from: workload "a" not found in the bundle
	// bug.yaml (document 2) Check default/a-to-b: spec.expect.result: unknown value "okay" (allowed: ok, http-NNN, reset, refused, timeout, tls-error, fail)
}

// WithConfig adds Istio config to a loaded bundle, validated as the bundle
// is; each call starts again from the bundle (harness.Runtime.ApplyConfig
// pushes the result to running pods).
func ExampleMesh_WithConfig() {
	m, err := mesh.Parse("bundle.yaml", []byte(bundle))
	if err != nil {
		panic(err)
	}
	m2, err := m.WithConfig("row.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: b.default.svc.cluster.local
  trafficPolicy: {tls: {mode: DISABLE}}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(m2.Workloads), "workloads,", len(m2.PeerAuthentications), "PeerAuthentication,", len(m2.DestinationRules), "DestinationRule,", len(m2.Checks), "checks")

	_, err = m.WithConfig("row.yaml", []byte("apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: c}\n"))
	fmt.Println(err)
	// Output:
	// 2 workloads, 1 PeerAuthentication, 1 DestinationRule, 0 checks
	// row.yaml (document 1) Workload c: kind: not config: it declares a pod, and the pods of a running mesh cannot change; only PeerAuthentication, DestinationRule, Gateway, VirtualService, ServiceEntry, Sidecar, Service, Endpoints, EndpointSlice, Secret, ConfigMap, NetworkPolicy may be applied (start a new mesh for other pods)
}
