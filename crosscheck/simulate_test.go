package crosscheck

import (
	"net/netip"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func chain(name string, m *listener.FilterChainMatch) *listener.FilterChain {
	return &listener.FilterChain{Name: name, FilterChainMatch: m}
}

// Envoy's rules: the most specific criterion wins step by step; a chain
// without a criterion only matches when no specific one does.
func TestSelectChain(t *testing.T) {
	l := &listener.Listener{
		FilterChains: []*listener.FilterChain{
			chain("mtls-http", &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(8080), TransportProtocol: "tls", ApplicationProtocols: []string{"istio-http/1.1"}}),
			chain("mtls-tcp", &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(8080), TransportProtocol: "tls"}),
			chain("plain", &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(8080), TransportProtocol: "raw_buffer"}),
			chain("catch-all-tls", &listener.FilterChainMatch{TransportProtocol: "tls"}),
			chain("sni", &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(443), ServerNames: []string{"*.example.com"}}),
			chain("sni-exact", &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(443), ServerNames: []string{"a.example.com"}}),
		},
		DefaultFilterChain: chain("default", nil),
	}
	dst := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port) }
	for _, tc := range []struct {
		port      uint16
		transport string
		alpn      []string
		sni       string
		want      string
	}{
		{8080, "tls", []string{"istio-http/1.1", "istio"}, "", "mtls-http"},
		{8080, "tls", []string{"istio-peer-exchange", "istio"}, "", "mtls-tcp"},
		{8080, "raw_buffer", []string{"http/1.1"}, "", "plain"},
		{9999, "tls", nil, "", "catch-all-tls"},
		{9999, "raw_buffer", nil, "", "default"},
		{443, "tls", nil, "a.example.com", "sni-exact"},
		{443, "tls", nil, "b.example.com", "sni"},
		{443, "tls", nil, "other.org", "default"}, // port matched, no server name did: no wildcard chain on 443
	} {
		got := selectChain(l, dst(tc.port), tc.transport, tc.alpn, tc.sni)
		if got.GetName() != tc.want {
			t.Errorf("port %d %s alpn %v sni %q: chain %q, want %q", tc.port, tc.transport, tc.alpn, tc.sni, got.GetName(), tc.want)
		}
	}
}
