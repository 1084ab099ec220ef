package mesh

import "fmt"

// InboundDecisionKey is the key under which translation records what
// decided a sidecar's inbound port; 0 stands for ports that are not
// workload ports (the passthrough chains).
func InboundDecisionKey(port uint32) string {
	if port == 0 {
		return "inbound:*"
	}
	return fmt.Sprintf("inbound:%d", port)
}

// GatewayDecisionKey is the key of a gateway's listener port. Outbound
// clusters are recorded under their cluster name.
func GatewayDecisionKey(port uint32) string { return fmt.Sprintf("gateway:%d", port) }

// Decision names the Istio resources that decided one hop's TLS, as
// translation used them: the receiving sidecar's effective
// PeerAuthentication (with its level), the sending proxy's DestinationRule
// (or auto mTLS), the Gateway server that received the call and the
// VirtualService route that picked the destination. Empty: not part of the
// hop (`meshtls run -o json` hops[].decided).
type Decision struct {
	PeerAuthentication string `json:"peerAuthentication,omitempty"`
	DestinationRule    string `json:"destinationRule,omitempty"`
	Gateway            string `json:"gateway,omitempty"`
	VirtualService     string `json:"virtualService,omitempty"`
}

// Lines are the recorded resources, one per kind, e.g. "PeerAuthentication
// shop/default (namespace): STRICT"; none for a nil Decision.
func (d *Decision) Lines() []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, f := range []struct{ kind, v string }{
		{"VirtualService", d.VirtualService}, {"DestinationRule", d.DestinationRule},
		{"Gateway", d.Gateway}, {"PeerAuthentication", d.PeerAuthentication},
	} {
		if f.v != "" {
			out = append(out, f.kind+" "+f.v)
		}
	}
	return out
}

// IsZero reports whether nothing was recorded.
func (d Decision) IsZero() bool { return d == Decision{} }

// Merge fills d's empty fields from o.
func (d Decision) Merge(o Decision) Decision {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&d.PeerAuthentication, o.PeerAuthentication}, {&d.DestinationRule, o.DestinationRule},
		{&d.Gateway, o.Gateway}, {&d.VirtualService, o.VirtualService},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	return d
}
