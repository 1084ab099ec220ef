package mesh

import "testing"

func TestPortProtocol(t *testing.T) {
	for _, tc := range []struct {
		name, app string
		port      uint32
		want      Protocol
		http, tcp bool
	}{
		{"http", "", 8080, ProtoHTTP, true, false},
		{"HTTP-web", "", 8080, ProtoHTTP, true, false},
		{"http2", "", 80, ProtoHTTP2, true, false},
		{"http_proxy", "", 80, ProtoHTTPProxy, true, false},
		{"grpc-api", "", 80, ProtoGRPC, true, false},
		{"grpc-web-x", "", 80, ProtoGRPCWeb, true, false},
		{"tcp-db", "", 9000, ProtoTCP, false, true},
		{"https", "", 8443, ProtoHTTPS, false, true},
		{"tls-x", "", 8443, ProtoTLS, false, true},
		{"mongo", "", 1, ProtoMongo, false, true},
		{"redis", "", 1, ProtoRedis, false, true},
		{"mysql", "", 1, ProtoMySQL, false, true},
		{"udp-dns", "", 53, ProtoUDP, false, false},
		{"web", "", 8080, ProtoAuto, false, false},
		{"", "", 8080, ProtoAuto, false, false},
		{"web", "", 3306, ProtoTCP, false, true},
		{"", "", 25, ProtoTCP, false, true},
		{"", "", 53, ProtoTCP, false, true},
		{"", "", 27017, ProtoTCP, false, true},
		{"http", "tcp", 8080, ProtoTCP, false, true},  // appProtocol wins
		{"tcp", "HTTP", 8080, ProtoHTTP, true, false}, // case-insensitive
		{"tcp", "kubernetes.io/h2c", 1, ProtoHTTP2, true, false},
		{"x", "kubernetes.io/wss", 1, ProtoHTTPS, false, true},
		{"http", "foo", 3306, ProtoTCP, false, true}, // unknown appProtocol, well-known port
	} {
		got := PortProtocol(tc.name, tc.app, tc.port)
		if got != tc.want || got.IsHTTP() != tc.http || got.IsTCP() != tc.tcp {
			t.Errorf("PortProtocol(%q,%q,%d) = %q (http %v tcp %v), want %q (http %v tcp %v)",
				tc.name, tc.app, tc.port, got, got.IsHTTP(), got.IsTCP(), tc.want, tc.http, tc.tcp)
		}
	}
}
