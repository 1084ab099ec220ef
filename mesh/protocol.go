package mesh

import "strings"

// Protocol selection: the class Istio gives a port from its appProtocol,
// name or number (pkg/config/kube/conversion.go, pkg/config/protocol).

// Protocol is Istio's protocol class for a port.
type Protocol string

const (
	ProtoHTTP  Protocol = "HTTP"
	ProtoHTTP2 Protocol = "HTTP2"
	ProtoGRPC  Protocol = "GRPC"
	ProtoHTTPS Protocol = "HTTPS"
	ProtoTLS   Protocol = "TLS"
	ProtoTCP   Protocol = "TCP"
	ProtoUDP   Protocol = "UDP"
	ProtoMongo Protocol = "Mongo"
	ProtoRedis Protocol = "Redis"
	ProtoMySQL Protocol = "MySQL"
	ProtoAuto  Protocol = "" // not declared: auto-detection

	// Istio has two more HTTP-class instances (pkg/config/protocol/instance.go).
	ProtoGRPCWeb   Protocol = "GRPC-Web"
	ProtoHTTPProxy Protocol = "HTTP_PROXY"
)

// wellKnownTCPPorts are treated as TCP when the name gives no protocol.
// Source: pkg/config/kube/conversion.go (wellKnownPorts).
var wellKnownTCPPorts = map[uint32]bool{25: true, 53: true, 3306: true, 27017: true}

// parseProtocol mirrors protocol.Parse (pkg/config/protocol/instance.go):
// case-insensitive, ProtoAuto for anything unknown.
func parseProtocol(s string) Protocol {
	switch strings.ToLower(s) {
	case "tcp":
		return ProtoTCP
	case "udp":
		return ProtoUDP
	case "grpc":
		return ProtoGRPC
	case "grpc-web":
		return ProtoGRPCWeb
	case "http":
		return ProtoHTTP
	case "http_proxy":
		return ProtoHTTPProxy
	case "http2":
		return ProtoHTTP2
	case "https":
		return ProtoHTTPS
	case "tls":
		return ProtoTLS
	case "mongo":
		return ProtoMongo
	case "redis":
		return ProtoRedis
	case "mysql":
		return ProtoMySQL
	}
	return ProtoAuto
}

// PortProtocol selects the protocol as Istio does: appProtocol wins, then the
// port name prefix before the first '-', case-insensitive; else auto, except
// ports 25, 53, 3306, 27017 which are TCP.
// Source: pkg/config/kube/conversion.go (ConvertProtocol). An empty
// appProtocol counts as unset (Kubernetes has a nil pointer there).
func PortProtocol(name, appProtocol string, port uint32) Protocol {
	if appProtocol != "" {
		name = appProtocol
		// Kubernetes' standard appProtocol values, handled only for appProtocol.
		switch name {
		case "kubernetes.io/h2c":
			return ProtoHTTP2
		case "kubernetes.io/ws":
			return ProtoHTTP
		case "kubernetes.io/wss":
			return ProtoHTTPS
		}
	}
	// grpc-web contains the separator, so it is checked before splitting.
	if strings.HasPrefix(strings.ToLower(name), "grpc-web") {
		return ProtoGRPCWeb
	}
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	p := parseProtocol(name)
	if p == ProtoAuto && wellKnownTCPPorts[port] {
		return ProtoTCP
	}
	return p
}

// IsHTTP reports the HTTP class (HTTP, HTTP2, GRPC); IsTCP the TCP class
// (TCP, HTTPS, TLS, Mongo, Redis, MySQL).
// Source: pkg/config/protocol/instance.go (IsHTTP, IsTCP).
func (p Protocol) IsHTTP() bool {
	switch p {
	case ProtoHTTP, ProtoHTTP2, ProtoGRPC, ProtoGRPCWeb, ProtoHTTPProxy:
		return true
	}
	return false
}

func (p Protocol) IsTCP() bool {
	switch p {
	case ProtoTCP, ProtoHTTPS, ProtoTLS, ProtoMongo, ProtoRedis, ProtoMySQL:
		return true
	}
	return false
}

// IsTLS reports HTTPS and TLS (pkg/config/protocol/instance.go IsTLS).
func (p Protocol) IsTLS() bool { return p == ProtoHTTPS || p == ProtoTLS }
