package crosscheck

// Envoy extensions istiod's config names that meshtls's own config does
// not: registered so that `meshtls oracle --istio-config` can print them.
import (
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3" // a mesh config's accessLogFile
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_stats/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/network/dns_resolver/cares/v3" // DNS clusters (ServiceEntry resolution DNS)
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
)
