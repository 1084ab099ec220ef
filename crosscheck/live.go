package crosscheck

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// The live differential (docs/oracle.md): the same pods run istiod's
// config, served by meshtls's own ADS/SDS server. Three things an Istio
// proxy gets from elsewhere are supplied here:
//   - secrets: istiod's config fetches "default", "ROOTCA" and file-root: /
//     file-cert: names from pilot-agent's SDS server (cluster sds-grpc, a
//     socket in the pod) and credentialName secrets from istiod over ADS;
//     here all of them come over ADS, same names, made by
//     translate.IstioSecrets from the run's certificates;
//   - access logs: with Istio's default mesh config (no accessLogFile) the
//     proxies log nothing; the harness reads each hop from meshtls's
//     access log, so every listener, connection manager and tcp_proxy gets
//     it (telemetry only: it changes no connection);
//   - everything else is istiod's, with the oracle's substitutions.

// sdsAgentCluster is the bootstrap cluster pilot-agent's SDS server is
// reached through (Istio's bootstrap template, "sds-grpc").
const sdsAgentCluster = "sds-grpc"

// IstiodGenerator is a harness.ConfigGenerator that serves istiod's own
// config: one run of the oracle program per push, for the whole mesh.
func IstiodGenerator(oracle string) harness.ConfigGenerator {
	return func(ctx context.Context, m *mesh.Mesh, env *translate.Env, proxies []*mesh.Workload) (map[string]*translate.Resources, error) {
		b := &Bundle{Name: "live", Mesh: m, Addrs: env.Addrs}
		_, cfgs, err := Generate(ctx, oracle, []*Bundle{b})
		if err != nil {
			return nil, err
		}
		out := make(map[string]*translate.Resources, len(proxies))
		for _, w := range proxies {
			res := cfgs[0].Proxies[w.ID()]
			if res == nil {
				return nil, fmt.Errorf("istiod gave no config for proxy %s", w.ID())
			}
			if err := serveLive(res, m, w, env); err != nil {
				return nil, fmt.Errorf("istiod's config for %s: %w", w.ID(), err)
			}
			out[w.ID()] = res
		}
		return out, nil
	}
}

// serveLive makes istiod's config for w servable as described above.
func serveLive(res *translate.Resources, m *mesh.Mesh, w *mesh.Workload, env *translate.Env) error {
	var names []string
	for _, l := range res.Listeners {
		for _, fc := range chains(l) {
			if err := sdsOverADS(fc.GetTransportSocket(), &names); err != nil {
				return fmt.Errorf("listener %s: %w", l.GetName(), err)
			}
		}
		if err := addAccessLogs(l, w); err != nil {
			return err
		}
	}
	for _, c := range res.Clusters {
		if err := sdsOverADS(c.GetTransportSocket(), &names); err != nil {
			return fmt.Errorf("cluster %s: %w", c.GetName(), err)
		}
		for _, tm := range c.GetTransportSocketMatches() {
			if err := sdsOverADS(tm.GetTransportSocket(), &names); err != nil {
				return fmt.Errorf("cluster %s: %w", c.GetName(), err)
			}
		}
	}
	slices.Sort(names)
	secrets, err := translate.IstioSecrets(m, w, env, slices.Compact(names))
	if err != nil {
		return err
	}
	res.Secrets = secrets
	// Nothing may still point at pilot-agent's SDS server (an SDS config
	// somewhere the walk above does not look): Envoy would wait for it.
	for _, ls := range [][]proto.Message{toMessages(res.Listeners), toMessages(res.Clusters)} {
		for _, r := range ls {
			b, err := proto.Marshal(r)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(sdsAgentCluster)) {
				return fmt.Errorf("%s still names the SDS cluster %s after its secrets were moved to ADS", r.(interface{ GetName() string }).GetName(), sdsAgentCluster)
			}
		}
	}
	return nil
}

func toMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func chains(l *listener.Listener) []*listener.FilterChain {
	out := slices.Clone(l.GetFilterChains())
	if d := l.GetDefaultFilterChain(); d != nil {
		out = append(out, d)
	}
	return out
}

// ads is where meshtls's proxies get every xDS resource, secrets included.
func ads() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

// sdsOverADS points every SDS secret config of a TLS transport socket at
// ADS and adds the secret names to names.
func sdsOverADS(ts *core.TransportSocket, names *[]string) error {
	a := ts.GetTypedConfig()
	if a == nil {
		return nil
	}
	var msg proto.Message
	var common *tlsv3.CommonTlsContext
	switch {
	case a.MessageIs(&tlsv3.UpstreamTlsContext{}):
		u := &tlsv3.UpstreamTlsContext{}
		if err := a.UnmarshalTo(u); err != nil {
			return err
		}
		msg, common = u, u.GetCommonTlsContext()
	case a.MessageIs(&tlsv3.DownstreamTlsContext{}):
		d := &tlsv3.DownstreamTlsContext{}
		if err := a.UnmarshalTo(d); err != nil {
			return err
		}
		msg, common = d, d.GetCommonTlsContext()
	default:
		return nil // raw_buffer and other sockets hold no secrets
	}
	sds := slices.Clone(common.GetTlsCertificateSdsSecretConfigs())
	sds = append(sds, common.GetValidationContextSdsSecretConfig(), common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
	for _, s := range sds {
		if s == nil {
			continue
		}
		s.SdsConfig = ads()
		*names = append(*names, s.GetName())
	}
	b, err := anypb.New(msg)
	if err != nil {
		return err
	}
	ts.ConfigType = &core.TransportSocket_TypedConfig{TypedConfig: b}
	return nil
}

// addAccessLogs gives l meshtls's access log: on the listener (connections
// no chain took) and on each connection manager and tcp_proxy. A tcp_proxy
// also logs when its upstream connects, except behind a TLS transport
// socket (meshtls's translator does the same: the early line could lack the
// verified peer).
func addAccessLogs(l *listener.Listener, w *mesh.Workload) error {
	dir := accesslog.DirectionOutbound
	switch {
	case w.Gateway:
		dir = accesslog.DirectionGateway
	case l.GetTrafficDirection() == core.TrafficDirection_INBOUND:
		dir = accesslog.DirectionInbound
	}
	l.AccessLog = translate.ListenerAccessLogs(w.ID(), dir, l.GetName())
	logs := translate.AccessLogs(w.ID(), dir, l.GetName())
	for _, fc := range chains(l) {
		for _, f := range fc.GetFilters() {
			a := f.GetTypedConfig()
			var msg proto.Message
			switch {
			case a.MessageIs(&hcm.HttpConnectionManager{}):
				m := &hcm.HttpConnectionManager{}
				if err := a.UnmarshalTo(m); err != nil {
					return fmt.Errorf("listener %s: %w", l.GetName(), err)
				}
				m.AccessLog = logs
				msg = m
			case a.MessageIs(&tcpproxy.TcpProxy{}):
				m := &tcpproxy.TcpProxy{}
				if err := a.UnmarshalTo(m); err != nil {
					return fmt.Errorf("listener %s: %w", l.GetName(), err)
				}
				m.AccessLog = logs
				m.AccessLogOptions = nil
				if fc.GetTransportSocket() == nil {
					m.AccessLogOptions = &tcpproxy.TcpProxy_TcpAccessLogOptions{FlushAccessLogOnConnected: true}
				}
				msg = m
			default:
				continue
			}
			b, err := anypb.New(msg)
			if err != nil {
				return err
			}
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: b}
		}
	}
	return nil
}

// LiveDifferences pairs the checks of one bundle run on the same pods under
// meshtls's config and istiod's (by check name) and returns those whose
// result, wire or peer differ, each explained by the allowlist's live
// entries when one matches: key "BUNDLE CLIENT check NAME", values
// "RESULT [WIRE] peer=PEER".
func LiveDifferences(bundle string, meshtls, istio []*trace.Result, allow *Allowlist) []Difference {
	byName := map[string]*trace.Result{}
	for _, r := range istio {
		byName[r.Name] = r
	}
	var out []Difference
	for _, m := range meshtls {
		i := byName[m.Name]
		d := Difference{Bundle: bundle, Proxy: m.From, Key: "check " + m.Name, Behaviour: true, Live: true,
			Meshtls: observed(m), Istio: observed(i)}
		if d.Meshtls == d.Istio {
			continue
		}
		d.Allowed = allow.Explain(d)
		out = append(out, d)
	}
	return out
}

func observed(r *trace.Result) string {
	if r == nil {
		return "(absent)"
	}
	peer := r.Peer
	if peer == "" {
		peer = "none"
	}
	return trace.MatrixCell{Result: r.Outcome(), Wire: r.Wire}.String() + " peer=" + peer
}
