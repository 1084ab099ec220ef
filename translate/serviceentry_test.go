package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

func TestServiceEntries(t *testing.T) {
	res, m := translate(t, "serviceentry.yaml", "", "sleep")
	env := testEnv(t, m)
	extIP := env.Addrs["external/ext"].String()

	// DNS resolution: STRICT_DNS on the host, mesh-external → plaintext.
	c := findCluster(t, res, "outbound|443||api.example.org")
	if c.GetType() != cluster.Cluster_STRICT_DNS {
		t.Errorf("type = %v", c.GetType())
	}
	if a := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress(); a.Address != "api.example.org" || a.GetPortValue() != 443 {
		t.Errorf("endpoint = %v", a)
	}
	if c.TransportSocket != nil || c.TransportSocketMatches != nil {
		t.Errorf("mesh-external service gets TLS without a DestinationRule")
	}
	// TLS port without addresses: matched on SNI.
	fc := findChain(t, findListener(t, res, "0.0.0.0_443"), "outbound|443||api.example.org")
	equal(t, "server_names", fc.FilterChainMatch.ServerNames, []string{"api.example.org"})
	equal(t, "443 listener filters", names(findListener(t, res, "0.0.0.0_443").ListenerFilters), []string{"envoy.filters.listener.tls_inspector"})
	// TCP port of a DNS host: matched on the IP the name resolves to.
	fc = findChain(t, findListener(t, res, "0.0.0.0_5432"), "outbound|5432||api.example.org")
	if p := fc.FilterChainMatch.PrefixRanges; len(p) != 1 || p[0].AddressPrefix != extIP {
		t.Errorf("5432 prefixes = %v, want %s", p, extIP)
	}
	// HTTP port: virtual host on the host name.
	for _, v := range findRoute(t, res, "80").VirtualHosts {
		if v.Name == "api.example.org:80" {
			equal(t, "domains", v.Domains, []string{"api.example.org", "api.example.org:80"})
		}
	}
	// STATIC with addresses: chains on the addresses.
	fc = findChain(t, findListener(t, res, "0.0.0.0_7000"), "outbound|7000||static.example.org")
	if p := fc.FilterChainMatch.PrefixRanges; len(p) != 1 || p[0].AddressPrefix != "192.0.2.0" || p[0].PrefixLen.GetValue() != 24 {
		t.Errorf("7000 prefixes = %v", p)
	}
	// NONE: ORIGINAL_DST, and the port's default chain.
	if c := findCluster(t, res, "outbound|6000||any.example.org"); c.GetType() != cluster.Cluster_ORIGINAL_DST {
		t.Errorf("NONE type = %v", c.GetType())
	}
	fc = findChain(t, findListener(t, res, "0.0.0.0_6000"), "0.0.0.0_6000|passthrough")
	if got := chainTCPProxy(t, fc).GetCluster(); got != "outbound|6000||any.example.org" {
		t.Errorf("NONE default chain cluster = %q", got)
	}
	// MESH_INTERNAL with workloadSelector: auto mTLS to the sidecar workload.
	c = findCluster(t, res, "outbound|9080||vm.mesh.internal")
	if len(c.TransportSocketMatches) != 2 {
		t.Fatalf("internal SE has no auto mTLS")
	}
	u := upstreamTLS(t, c.TransportSocketMatches[0].TransportSocket)
	equal(t, "SANs", sanStrings(u.CommonTlsContext.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()), []string{"URI:spiffe://cluster.local/ns/default/sa/vm"})
	if found, l := endpointHasTLSMode(c, env.Addrs["default/vm"].String()); !found || !l {
		t.Errorf("vm endpoint found=%v tlsMode=%v", found, l)
	}
}

// DestinationRule on a ServiceEntry host originates TLS. Istio puts auto
// SNI on every SIMPLE/MUTUAL cluster without sni (cluster_tls.go,
// setAutoSniAndAutoSanValidation), TCP ones too; a tcp_proxy has no request
// host and ignores it, and the TLS context itself names no SNI.
func TestServiceEntryOrigination(t *testing.T) {
	res, _ := translate(t, "serviceentry.yaml", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.org
  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/meshtls/ca/app.pem}}
`, "sleep")
	c := findCluster(t, res, "outbound|80||api.example.org")
	if upstreamTLS(t, c.TransportSocket) == nil {
		t.Fatalf("no origination")
	}
	if !httpOptions(t, c).GetUpstreamHttpProtocolOptions().GetAutoSni() {
		t.Errorf("HTTP cluster without auto SNI")
	}
	c = findCluster(t, res, "outbound|443||api.example.org")
	u := upstreamTLS(t, c.TransportSocket)
	if u == nil || u.Sni != "" || !httpOptions(t, c).GetUpstreamHttpProtocolOptions().GetAutoSni() {
		t.Errorf("TCP cluster: TLS=%v http options=%v; want TLS without sni, auto_sni options", c.TransportSocket, httpOptions(t, c))
	}
}
