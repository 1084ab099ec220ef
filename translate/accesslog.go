package translate

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	stream "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshtls/meshtls/accesslog"
)

// accessLogs is the stdout JSON logger for one listener, HCM or tcp_proxy,
// in the format package accesslog owns.
func accessLogs(proxy string, direction accesslog.Direction, listenerName string) []*accesslogv3.AccessLog {
	return []*accesslogv3.AccessLog{stdoutLog(proxy, direction, listenerName, nil)}
}

// listenerAccessLogs logs connections the listener closes itself, before
// any network filter runs: no matching filter chain (response flag NR, detail
// filter_chain_not_found). Istio does the same with a response flag filter
// (pilot/pkg/networking/core/accesslog.go, listenerAccessLogFilter).
func listenerAccessLogs(proxy string, direction accesslog.Direction, listenerName string) []*accesslogv3.AccessLog {
	filter := &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"NR"}},
	}}
	return []*accesslogv3.AccessLog{stdoutLog(proxy, direction, listenerName, filter)}
}

func stdoutLog(proxy string, direction accesslog.Direction, listenerName string, filter *accesslogv3.AccessLogFilter) *accesslogv3.AccessLog {
	format := accesslog.Format(proxy, direction, listenerName)
	fields := make(map[string]*structpb.Value, len(format))
	for k, v := range format {
		fields[k] = structpb.NewStringValue(v)
	}
	cfg := &stream.StdoutAccessLog{AccessLogFormat: &stream.StdoutAccessLog_LogFormat{
		LogFormat: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}},
		},
	}}
	return &accesslogv3.AccessLog{
		Name:       "envoy.access_loggers.stdout",
		Filter:     filter,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(cfg)},
	}
}

// AccessLogs is the access log meshtls's proxies write for a connection
// manager or tcp_proxy of listenerName, and ListenerAccessLogs the
// listener's own (connections no filter chain took), for config meshtls did
// not build: istiod's, served in the live differential (package crosscheck).
func AccessLogs(proxy string, direction accesslog.Direction, listenerName string) []*accesslogv3.AccessLog {
	return accessLogs(proxy, direction, listenerName)
}

// ListenerAccessLogs is the listener's own access log, for connections no
// filter chain took (see AccessLogs).
func ListenerAccessLogs(proxy string, direction accesslog.Direction, listenerName string) []*accesslogv3.AccessLog {
	return listenerAccessLogs(proxy, direction, listenerName)
}
