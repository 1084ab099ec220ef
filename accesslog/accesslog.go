// Package accesslog owns the access-log contract between the proxies and the
// harness: every Envoy writes one JSON object per TCP connection or HTTP
// request to stdout, with the keys below (Format, used by translate), and the
// harness reads the lines back (Parse, Entry). Neither side spells a key
// itself.
package accesslog

// Keys of a line.
const (
	KeyStart                            = "start"
	KeyProxy                            = "proxy"
	KeyDirection                        = "direction"
	KeyListener                         = "listener"
	KeyMethod                           = "method"
	KeyPath                             = "path"
	KeyAuthority                        = "authority"
	KeyProtocol                         = "protocol"
	KeyResponseCode                     = "response_code"
	KeyResponseFlags                    = "response_flags"
	KeyResponseCodeDetails              = "response_code_details"
	KeyConnectionTerminationDetails     = "connection_termination_details"
	KeyUpstreamTransportFailureReason   = "upstream_transport_failure_reason"
	KeyDownstreamTransportFailureReason = "downstream_transport_failure_reason"
	KeyUpstreamCluster                  = "upstream_cluster"
	KeyUpstreamHost                     = "upstream_host"
	KeyUpstreamLocalAddress             = "upstream_local_address"
	KeyDownstreamLocalAddress           = "downstream_local_address"
	KeyDownstreamRemoteAddress          = "downstream_remote_address"
	KeyRequestedServerName              = "requested_server_name"
	KeyDownstreamTLSVersion             = "downstream_tls_version"
	KeyDownstreamPeerURISAN             = "downstream_peer_uri_san"
	KeyDownstreamPeerSubject            = "downstream_peer_subject"
	KeyDownstreamPeerCertSerial         = "downstream_peer_cert_serial"
	KeyUpstreamTLSVersion               = "upstream_tls_version"
	KeyUpstreamPeerURISAN               = "upstream_peer_uri_san"
	KeyUpstreamPeerSubject              = "upstream_peer_subject"
	KeyFilterChainName                  = "filter_chain_name"
	KeyDuration                         = "duration"
	KeyBytesReceived                    = "bytes_received"
	KeyBytesSent                        = "bytes_sent"
	// KeyEvent says why the line was written (Event).
	KeyEvent = "event"
)

// Event is Envoy's %ACCESS_LOG_TYPE%: why a line was written. A TCP
// connection writes EventTCPConnected when its upstream connects and
// EventTCPEnd when it closes (two lines, same downstream_remote_address;
// prefer the end line, fall back to the connected one while the connection
// is open); an HTTP request writes EventHTTPEnd; a connection a listener
// closes itself (no filter chain) writes EventNotSet. Values from Envoy's
// AccessLogType enum
// (https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/data/accesslog/v3/accesslog.proto#enum-data-accesslog-v3-accesslogtype).
type Event string

const (
	EventTCPConnected Event = "TcpUpstreamConnected"
	EventTCPEnd       Event = "TcpConnectionEnd"
	EventHTTPEnd      Event = "DownstreamEnd"
	EventNotSet       Event = "NotSet"
)

// Direction is the side of the proxy a listener serves.
type Direction string

const (
	DirectionOutbound Direction = "outbound"
	DirectionInbound  Direction = "inbound"
	DirectionGateway  Direction = "gateway"
)

// operators maps keys to Envoy command operators
// (https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/observability/access_log/usage#command-operators).
// Operators that make no sense for a TCP connection print "-" (or null in
// JSON), which is what we want: one format for both.
var operators = map[string]string{
	KeyStart:                            "%START_TIME%",
	KeyMethod:                           "%REQ(:METHOD)%",
	KeyPath:                             "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	KeyAuthority:                        "%REQ(:AUTHORITY)%",
	KeyProtocol:                         "%PROTOCOL%",
	KeyResponseCode:                     "%RESPONSE_CODE%",
	KeyResponseFlags:                    "%RESPONSE_FLAGS%",
	KeyResponseCodeDetails:              "%RESPONSE_CODE_DETAILS%",
	KeyConnectionTerminationDetails:     "%CONNECTION_TERMINATION_DETAILS%",
	KeyUpstreamTransportFailureReason:   "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
	KeyDownstreamTransportFailureReason: "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
	KeyUpstreamCluster:                  "%UPSTREAM_CLUSTER%",
	KeyUpstreamHost:                     "%UPSTREAM_HOST%",
	KeyUpstreamLocalAddress:             "%UPSTREAM_LOCAL_ADDRESS%",
	KeyDownstreamLocalAddress:           "%DOWNSTREAM_LOCAL_ADDRESS%",
	KeyDownstreamRemoteAddress:          "%DOWNSTREAM_REMOTE_ADDRESS%",
	KeyRequestedServerName:              "%REQUESTED_SERVER_NAME%",
	KeyDownstreamTLSVersion:             "%DOWNSTREAM_TLS_VERSION%",
	KeyDownstreamPeerURISAN:             "%DOWNSTREAM_PEER_URI_SAN%",
	KeyDownstreamPeerSubject:            "%DOWNSTREAM_PEER_SUBJECT%",
	KeyDownstreamPeerCertSerial:         "%DOWNSTREAM_PEER_SERIAL%",
	KeyUpstreamTLSVersion:               "%UPSTREAM_TLS_VERSION%",
	KeyUpstreamPeerURISAN:               "%UPSTREAM_PEER_URI_SAN%",
	KeyUpstreamPeerSubject:              "%UPSTREAM_PEER_SUBJECT%",
	KeyFilterChainName:                  "%FILTER_CHAIN_NAME%",
	KeyDuration:                         "%DURATION%",
	KeyBytesReceived:                    "%BYTES_RECEIVED%",
	KeyBytesSent:                        "%BYTES_SENT%",
	KeyEvent:                            "%ACCESS_LOG_TYPE%",
}

// Format is the JSON format of one listener's lines: every key with its
// Envoy command operator, plus the static proxy, direction and listener.
// The caller owns the returned map.
func Format(proxy string, direction Direction, listener string) map[string]string {
	f := make(map[string]string, len(operators)+3)
	for k, op := range operators {
		f[k] = op
	}
	f[KeyProxy] = proxy
	f[KeyDirection] = string(direction)
	f[KeyListener] = listener
	return f
}
