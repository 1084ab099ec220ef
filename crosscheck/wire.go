package crosscheck

// The JSON contract with the oracle program (module oracle/, package
// istiod, file wire.go declares the same shapes): a request of cases in, the
// resources istiod generates for each proxy out.

type oracleRequest struct {
	Cases []oracleCase `json:"cases"`
}

type oracleCase struct {
	Name       string `json:"name"`
	Kubernetes string `json:"kubernetes"`
	Istio      string `json:"istio"`
	// Mesh is the mesh config YAML (the mesh ConfigMap's data.mesh); ""
	// for Istio's defaults.
	Mesh    string        `json:"mesh,omitempty"`
	Proxies []oracleProxy `json:"proxies"`
}

type oracleProxy struct {
	ID             string            `json:"id"`
	Pod            string            `json:"pod"`
	Namespace      string            `json:"namespace"`
	IP             string            `json:"ip"`
	Router         bool              `json:"router"`
	Labels         map[string]string `json:"labels"`
	ServiceAccount string            `json:"serviceAccount"`
}

type oracleResponse struct {
	IstioVersion string         `json:"istioVersion"`
	Cases        []oracleResult `json:"cases"`
}

type oracleResult struct {
	Name    string              `json:"name"`
	Error   string              `json:"error,omitempty"`
	Proxies []oracleProxyConfig `json:"proxies,omitempty"`
	Notes   []string            `json:"notes,omitempty"`
}

type oracleProxyConfig struct {
	ID        string   `json:"id"`
	Listeners [][]byte `json:"listeners"`
	Clusters  [][]byte `json:"clusters"`
	Routes    [][]byte `json:"routes"`
	Endpoints [][]byte `json:"endpoints"`
}
