package harness

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtls/meshtls/mesh"
)

// captureArgs are the init flags for a workload's capture annotations, in
// istio-iptables' syntax; none for Istio's default (capture everything).
func captureArgs(c mesh.Capture) []string {
	var out []string
	ports := func(ps []uint32) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = fmt.Sprint(p)
		}
		return strings.Join(s, ",")
	}
	ranges := func(rs []netip.Prefix) string {
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = r.String()
		}
		return strings.Join(s, ",")
	}
	switch {
	case c.NoInbound:
		out = append(out, "--include-inbound-ports=")
	case c.InboundPorts != nil:
		out = append(out, "--include-inbound-ports="+ports(c.InboundPorts))
	}
	if len(c.ExcludeInbound) > 0 {
		out = append(out, "--exclude-inbound-ports="+ports(c.ExcludeInbound))
	}
	if len(c.ExcludeOutbound) > 0 {
		out = append(out, "--exclude-outbound-ports="+ports(c.ExcludeOutbound))
	}
	switch {
	case c.NoOutbound:
		out = append(out, "--include-outbound-ip-ranges=")
	case c.OutboundRanges != nil:
		out = append(out, "--include-outbound-ip-ranges="+ranges(c.OutboundRanges))
	}
	if len(c.ExcludeRanges) > 0 {
		out = append(out, "--exclude-outbound-ip-ranges="+ranges(c.ExcludeRanges))
	}
	return out
}
