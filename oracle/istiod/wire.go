// Package istiod runs Istio's own config generator (istiod's, from
// istio.io/istio/pilot) in process, without Kubernetes, and hands back the
// Envoy resources it builds for each proxy, with the few Istio-only Envoy
// extensions replaced or dropped so that upstream Envoy accepts them
// (docs/oracle.md lists each substitution and why).
//
// The input is written by the main module (package crosscheck), which knows
// meshtls bundles; this module knows only Istio. The JSON shapes below are
// that contract; crosscheck/wire.go declares the same shapes.
package istiod

// Request is one or more independent cases (a case is one bundle: one
// fake istiod each).
type Request struct {
	Cases []Case `json:"cases"`
}

// Case is a cluster's state: Kubernetes objects (Namespaces, Pods,
// Services, EndpointSlices, Secrets) and Istio config, both multi-document
// YAML, plus the proxies to build config for.
type Case struct {
	Name       string `json:"name"`
	Kubernetes string `json:"kubernetes"`
	Istio      string `json:"istio"`
	// Mesh is the MeshConfig YAML of the cluster's mesh ConfigMap
	// (istio-system/istio, key mesh); "" for Istio's defaults.
	Mesh    string  `json:"mesh,omitempty"`
	Proxies []Proxy `json:"proxies"`
}

// Proxy is what pilot-agent would tell istiod about itself.
type Proxy struct {
	ID             string            `json:"id"`  // meshtls workload ID, namespace/name
	Pod            string            `json:"pod"` // pod name
	Namespace      string            `json:"namespace"`
	IP             string            `json:"ip"`
	Router         bool              `json:"router"` // a gateway (istio-proxy "router" mode)
	Labels         map[string]string `json:"labels"`
	ServiceAccount string            `json:"serviceAccount"`
}

// Response answers a Request case by case, in order.
type Response struct {
	IstioVersion string   `json:"istioVersion"`
	Cases        []Result `json:"cases"`
}

// Result is one case's resources per proxy, or the error that stopped it.
type Result struct {
	Name    string        `json:"name"`
	Error   string        `json:"error,omitempty"`
	Proxies []ProxyConfig `json:"proxies,omitempty"`
	Notes   []string      `json:"notes,omitempty"` // substitutions applied
}

// ProxyConfig holds each resource as a binary protobuf (the typed message,
// not an Any), so the reader may use its own go-control-plane version.
type ProxyConfig struct {
	ID        string   `json:"id"`
	Listeners [][]byte `json:"listeners"`
	Clusters  [][]byte `json:"clusters"`
	Routes    [][]byte `json:"routes"`
	Endpoints [][]byte `json:"endpoints"`
}
