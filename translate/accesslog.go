package translate

import (
	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	stream "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Access log keys: every proxy writes one JSON object per connection (TCP) or
// request (HTTP) to stdout with these keys. The harness parses them, so they
// are part of the package's API.
const (
	LogStart                            = "start"
	LogProxy                            = "proxy"
	LogDirection                        = "direction"
	LogListener                         = "listener"
	LogMethod                           = "method"
	LogPath                             = "path"
	LogAuthority                        = "authority"
	LogProtocol                         = "protocol"
	LogResponseCode                     = "response_code"
	LogResponseFlags                    = "response_flags"
	LogResponseCodeDetails              = "response_code_details"
	LogConnectionTerminationDetails     = "connection_termination_details"
	LogUpstreamTransportFailureReason   = "upstream_transport_failure_reason"
	LogDownstreamTransportFailureReason = "downstream_transport_failure_reason"
	LogUpstreamCluster                  = "upstream_cluster"
	LogUpstreamHost                     = "upstream_host"
	LogUpstreamLocalAddress             = "upstream_local_address"
	LogDownstreamLocalAddress           = "downstream_local_address"
	LogDownstreamRemoteAddress          = "downstream_remote_address"
	LogRequestedServerName              = "requested_server_name"
	LogDownstreamTLSVersion             = "downstream_tls_version"
	LogDownstreamPeerURISAN             = "downstream_peer_uri_san"
	LogDownstreamPeerSubject            = "downstream_peer_subject"
	LogDownstreamPeerCertSerial         = "downstream_peer_cert_serial"
	LogUpstreamTLSVersion               = "upstream_tls_version"
	LogUpstreamPeerURISAN               = "upstream_peer_uri_san"
	LogUpstreamPeerSubject              = "upstream_peer_subject"
	LogFilterChainName                  = "filter_chain_name"
	LogDuration                         = "duration"
	LogBytesReceived                    = "bytes_received"
	LogBytesSent                        = "bytes_sent"
	// LogEvent says why the line was written (%ACCESS_LOG_TYPE%): a TCP
	// connection writes EventTCPConnected when its upstream connects and
	// EventTCPEnd when it closes (two lines, same downstream_remote_address;
	// prefer the end line, fall back to the connected one while the
	// connection is open); an HTTP request writes EventHTTPEnd; a connection
	// a listener closes itself (no filter chain) writes EventNotSet.
	LogEvent = "event"
)

// Values of LogEvent (Envoy's AccessLogType enum,
// https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/data/accesslog/v3/accesslog.proto#enum-data-accesslog-v3-accesslogtype).
const (
	EventTCPConnected = "TcpUpstreamConnected"
	EventTCPEnd       = "TcpConnectionEnd"
	EventHTTPEnd      = "DownstreamEnd"
	EventNotSet       = "NotSet"
)

// Directions written in the LogDirection key.
const (
	DirectionOutbound = "outbound"
	DirectionInbound  = "inbound"
	DirectionGateway  = "gateway"
)

// logOperators maps keys to Envoy command operators
// (https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/observability/access_log/usage#command-operators).
// Operators that make no sense for a TCP connection print "-" (or null in
// JSON), which is what we want: one format for both.
var logOperators = map[string]string{
	LogStart:                            "%START_TIME%",
	LogMethod:                           "%REQ(:METHOD)%",
	LogPath:                             "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	LogAuthority:                        "%REQ(:AUTHORITY)%",
	LogProtocol:                         "%PROTOCOL%",
	LogResponseCode:                     "%RESPONSE_CODE%",
	LogResponseFlags:                    "%RESPONSE_FLAGS%",
	LogResponseCodeDetails:              "%RESPONSE_CODE_DETAILS%",
	LogConnectionTerminationDetails:     "%CONNECTION_TERMINATION_DETAILS%",
	LogUpstreamTransportFailureReason:   "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
	LogDownstreamTransportFailureReason: "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
	LogUpstreamCluster:                  "%UPSTREAM_CLUSTER%",
	LogUpstreamHost:                     "%UPSTREAM_HOST%",
	LogUpstreamLocalAddress:             "%UPSTREAM_LOCAL_ADDRESS%",
	LogDownstreamLocalAddress:           "%DOWNSTREAM_LOCAL_ADDRESS%",
	LogDownstreamRemoteAddress:          "%DOWNSTREAM_REMOTE_ADDRESS%",
	LogRequestedServerName:              "%REQUESTED_SERVER_NAME%",
	LogDownstreamTLSVersion:             "%DOWNSTREAM_TLS_VERSION%",
	LogDownstreamPeerURISAN:             "%DOWNSTREAM_PEER_URI_SAN%",
	LogDownstreamPeerSubject:            "%DOWNSTREAM_PEER_SUBJECT%",
	LogDownstreamPeerCertSerial:         "%DOWNSTREAM_PEER_SERIAL%",
	LogUpstreamTLSVersion:               "%UPSTREAM_TLS_VERSION%",
	LogUpstreamPeerURISAN:               "%UPSTREAM_PEER_URI_SAN%",
	LogUpstreamPeerSubject:              "%UPSTREAM_PEER_SUBJECT%",
	LogFilterChainName:                  "%FILTER_CHAIN_NAME%",
	LogDuration:                         "%DURATION%",
	LogBytesReceived:                    "%BYTES_RECEIVED%",
	LogBytesSent:                        "%BYTES_SENT%",
	LogEvent:                            "%ACCESS_LOG_TYPE%",
}

// accessLogs is the stdout JSON logger for one listener, HCM or tcp_proxy.
// proxy, direction and listener are static strings.
func accessLogs(proxy, direction, listenerName string) []*accesslog.AccessLog {
	return []*accesslog.AccessLog{stdoutLog(proxy, direction, listenerName, nil)}
}

// listenerAccessLogs logs connections the listener closes itself, before
// any network filter runs: no matching filter chain (response flag NR, detail
// filter_chain_not_found). Istio does the same with a response flag filter
// (pilot/pkg/networking/core/accesslog.go, listenerAccessLogFilter).
func listenerAccessLogs(proxy, direction, listenerName string) []*accesslog.AccessLog {
	filter := &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslog.ResponseFlagFilter{Flags: []string{"NR"}},
	}}
	return []*accesslog.AccessLog{stdoutLog(proxy, direction, listenerName, filter)}
}

func stdoutLog(proxy, direction, listenerName string, filter *accesslog.AccessLogFilter) *accesslog.AccessLog {
	fields := make(map[string]*structpb.Value, len(logOperators)+3)
	for k, op := range logOperators {
		fields[k] = structpb.NewStringValue(op)
	}
	fields[LogProxy] = structpb.NewStringValue(proxy)
	fields[LogDirection] = structpb.NewStringValue(direction)
	fields[LogListener] = structpb.NewStringValue(listenerName)
	cfg := &stream.StdoutAccessLog{AccessLogFormat: &stream.StdoutAccessLog_LogFormat{
		LogFormat: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}},
		},
	}}
	return &accesslog.AccessLog{
		Name:       "envoy.access_loggers.stdout",
		Filter:     filter,
		ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: mustAny(cfg)},
	}
}
