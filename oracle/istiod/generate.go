package istiod

import (
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/test"
)

// IstioVersion is what the proxies report (pilot-agent's ISTIO_VERSION): the
// release line of the pinned istio.io/istio commit (its VERSION file).
const IstioVersion = "1.31.0"

func init() {
	// Istio logs to stdout by default; stdout carries our JSON answer.
	// Only errors, to stderr.
	o := log.DefaultOptions()
	o.OutputPaths = []string{"stderr"}
	o.ErrorOutputPaths = []string{"stderr"}
	o.SetDefaultOutputLevel(log.OverrideScopeName, log.ErrorLevel)
	if err := log.Configure(o); err != nil {
		fmt.Fprintln(os.Stderr, "meshtls-oracle: configure Istio's logging:", err)
	}
	// meshtls models sidecars and gateways only: no ztunnel, no waypoints.
	features.EnableAmbient = false
}

// Generate answers every case of req.
func Generate(req *Request) *Response {
	resp := &Response{IstioVersion: IstioVersion}
	for _, c := range req.Cases {
		resp.Cases = append(resp.Cases, generateCase(c))
	}
	return resp
}

func generateCase(c Case) (res Result) {
	res.Name = c.Name
	var notes notes
	err := test.Wrap(func(t test.Failer) {
		configs, err := istioConfigs(c.Istio)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := meshConfig(c.Mesh)
		if err != nil {
			t.Fatal(err)
		}
		s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
			KubernetesObjectString: c.Kubernetes,
			Configs:                configs,
			MeshConfig:             mc,
		})
		// Endpoints and pods reach istiod through informers after its first
		// push: wait until every update is in the push context.
		s.EnsureSynced(t)
		for _, p := range c.Proxies {
			pc, err := buildProxy(s, p, &notes)
			if err != nil {
				t.Fatal(err)
			}
			res.Proxies = append(res.Proxies, pc)
		}
	})
	if err != nil {
		return Result{Name: c.Name, Error: err.Error()}
	}
	res.Notes = notes.list()
	return res
}

// istioConfigs parses the Istio config as istiod's Kubernetes config client
// reads it (pilot/pkg/config/kube/crdclient/client.go): each object carries
// the cluster's domain suffix, which resolves a short host ("httpbin" in
// namespace default) to httpbin.default.svc.cluster.local
// (pilot/pkg/model/virtualservice.go, ResolveShortnameToFQDN). The fake
// server's ConfigString path leaves it empty, which would resolve it to
// "httpbin.default", a cluster no proxy has. As that path does, a config
// without namespace is in "default" and all share one creation time
// unless they give one.
func istioConfigs(yaml string) ([]config.Config, error) {
	if yaml == "" {
		return nil, nil
	}
	parsed, _, err := crd.ParseInputs(yaml)
	if err != nil {
		return nil, fmt.Errorf("read the Istio config: %w", err)
	}
	now := time.Now()
	for i := range parsed {
		c := &parsed[i]
		c.Domain = constants.DefaultClusterLocalDomain
		if c.Namespace == "" {
			c.Namespace = "default"
		}
		if c.CreationTimestamp.IsZero() {
			c.CreationTimestamp = now
		}
	}
	return parsed, nil
}

// meshConfig is the cluster's mesh config as istiod reads its ConfigMap:
// the YAML laid over Istio's defaults (auto mTLS on, trust domain
// cluster.local, root namespace istio-system, outbound traffic ALLOW_ANY)
// and validated (pkg/config/mesh/mesh.go, ApplyMeshConfigDefaults).
func meshConfig(yaml string) (*meshconfig.MeshConfig, error) {
	if yaml == "" {
		return mesh.DefaultMeshConfig(), nil
	}
	mc, err := mesh.ApplyMeshConfigDefaults(yaml)
	if err != nil {
		return nil, fmt.Errorf("read the mesh config: %w", err)
	}
	return mc, nil
}

func buildProxy(s *xdsfake.FakeDiscoveryServer, p Proxy, n *notes) (ProxyConfig, error) {
	typ := model.SidecarProxy
	if p.Router {
		typ = model.Router
	}
	// What pilot-agent sends in its node metadata (pkg/bootstrap, the
	// ISTIO_META_* of the injected sidecar and the gateway chart).
	proxy := s.SetupProxy(&model.Proxy{
		Type:            typ,
		ID:              p.Pod + "." + p.Namespace,
		IPAddresses:     []string{p.IP},
		ConfigNamespace: p.Namespace,
		DNSDomain:       p.Namespace + ".svc." + constants.DefaultClusterLocalDomain,
		Labels:          p.Labels,
		Metadata: &model.NodeMetadata{
			IstioVersion:   IstioVersion,
			Labels:         p.Labels,
			Namespace:      p.Namespace,
			InstanceIPs:    []string{p.IP},
			WorkloadName:   p.Pod,
			ServiceAccount: p.ServiceAccount,
			ClusterID:      cluster.ID(constants.DefaultClusterName),
		},
	})
	listeners := s.Listeners(proxy)
	routes := s.RoutesFromListeners(proxy, listeners)
	clusters := s.Clusters(proxy)
	eps := s.Endpoints(proxy)
	if err := substitute(listeners, routes, clusters, n); err != nil {
		return ProxyConfig{}, fmt.Errorf("proxy %s: %w", p.ID, err)
	}
	out := ProxyConfig{ID: p.ID}
	var err error
	for _, m := range listeners {
		out.Listeners, err = appendMarshal(out.Listeners, m, err)
	}
	for _, m := range routes {
		out.Routes, err = appendMarshal(out.Routes, m, err)
	}
	for _, m := range clusters {
		out.Clusters, err = appendMarshal(out.Clusters, m, err)
	}
	for _, m := range eps {
		out.Endpoints, err = appendMarshal(out.Endpoints, m, err)
	}
	return out, err
}

func appendMarshal(to [][]byte, m proto.Message, err error) ([][]byte, error) {
	if err != nil {
		return to, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return append(to, b), err
}

// notes collects each substitution once, for the reader of the output.
type notes map[string]bool

func (n *notes) add(format string, args ...any) {
	if *n == nil {
		*n = notes{}
	}
	(*n)[fmt.Sprintf(format, args...)] = true
}

func (n notes) list() []string {
	var out []string
	for k := range n {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
