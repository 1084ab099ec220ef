package trace

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/meshtls/meshtls/outcome"
)

// Explain renders the result for a human: the verdict, expected against
// observed side by side, the mismatches, then the hop trace with its
// evidence. It is meant for t.Errorf and for the CLI's failure details.
func (r *Result) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "check %s", r.Name)
	if r.Scenario != "" {
		fmt.Fprintf(&b, " (scenario %s)", r.Scenario)
	}
	fmt.Fprintf(&b, ": %s\n", strings.ToUpper(string(r.Verdict)))
	fmt.Fprintf(&b, "  call: %s -> %s", r.From, r.To)
	if r.Via != "" {
		fmt.Fprintf(&b, " via %s", r.Via)
	}
	b.WriteString("\n")

	exp := r.Expected
	if exp == nil {
		exp = &Expected{}
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  \texpected\tobserved\n")
	row := func(name, want, got string, compared bool) {
		if !compared {
			want = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, want, got)
	}
	row("result", string(exp.Result), observedResult(r), exp.Result != "")
	row("wire", wireString(exp.Wire), wireString(r.Wire), len(exp.Wire) > 0)
	row("peer", exp.Peer, normPeer(r.Peer), exp.Peer != "")
	row("reason", "contains "+fmt.Sprintf("%q", exp.Reason), orNone(r.Reason), exp.Reason != "")
	_ = tw.Flush()

	if r.Error != "" {
		fmt.Fprintf(&b, "  client error: %s\n", r.Error)
	}
	if r.Body != "" && !r.Passed() {
		fmt.Fprintf(&b, "  body: %s\n", r.Body)
	}
	if len(r.Mismatches) > 0 {
		b.WriteString("  mismatches:\n")
		for _, m := range r.Mismatches {
			for i, line := range strings.Split(m, "\n") {
				if i == 0 {
					fmt.Fprintf(&b, "    - %s\n", line)
				} else {
					fmt.Fprintf(&b, "      %s\n", line)
				}
			}
		}
	}
	b.WriteString("  hops:\n")
	for i, h := range r.Hops {
		fmt.Fprintf(&b, "    %d. %s -> %s  %s\n", i+1, endpoint(h.From, h.Src), endpoint(h.To, h.Dst), h.Wire)
		for j, l := range h.Layers {
			fmt.Fprintf(&b, "       layer %d: %s\n", j+1, l.String())
		}
		if h.Flags != "" {
			fmt.Fprintf(&b, "       flags: %s\n", h.Flags)
		}
		if h.FailureReason != "" {
			fmt.Fprintf(&b, "       reason: %s\n", h.FailureReason)
		}
		for _, line := range h.Decided.Lines() {
			fmt.Fprintf(&b, "       decided by: %s\n", line)
		}
		for _, n := range h.Notes {
			fmt.Fprintf(&b, "       note: %s\n", n)
		}
		if len(h.Sources) > 0 {
			fmt.Fprintf(&b, "       evidence: %s\n", strings.Join(h.Sources, ", "))
		} else {
			b.WriteString("       evidence: none\n")
		}
	}
	return b.String()
}

// String describes a layer in one line: kind, version, SNI, ALPN, who
// terminated it, the client identity verified and the server certificate.
func (l Layer) String() string {
	if l.Kind != KindTLS {
		return KindPlaintext
	}
	parts := []string{"tls"}
	if l.Version != "" {
		parts = append(parts, l.Version)
	}
	if l.SNI != "" {
		parts = append(parts, "sni="+l.SNI)
	} else {
		parts = append(parts, "sni=(none)")
	}
	if len(l.ALPN) > 0 {
		parts = append(parts, "alpn="+strings.Join(l.ALPN, ","))
	}
	if l.TerminatedBy != "" {
		parts = append(parts, "terminated by "+l.TerminatedBy)
	}
	if l.PeerVerified {
		parts = append(parts, "client cert verified: "+l.Peer)
	} else {
		parts = append(parts, "no client cert verified")
	}
	if l.Server != "" {
		parts = append(parts, "server cert: "+l.Server)
	}
	return strings.Join(parts, " ")
}

// Table renders results as rows of scenario, check, expected, observed and
// verdict, for the CLI.
func Table(results []Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SCENARIO\tCHECK\tEXPECTED\tOBSERVED\tVERDICT\n")
	for i := range results {
		r := &results[i]
		exp := "-"
		if r.Expected != nil {
			exp = summary(string(r.Expected.Result), r.Expected.Wire, r.Expected.Peer, r.Expected.Reason)
		}
		obs := summary(observedResult(r), r.Wire, normPeer(r.Peer), r.Reason)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Name, exp, obs, r.Verdict)
	}
	_ = tw.Flush()
	return b.String()
}

func summary(result string, wire []outcome.Wire, peer, reason string) string {
	var parts []string
	if result != "" {
		parts = append(parts, result)
	}
	if len(wire) > 0 {
		parts = append(parts, wireString(wire))
	}
	if peer != "" {
		parts = append(parts, "peer="+peer)
	}
	if reason != "" {
		parts = append(parts, "reason="+short(reason, 60))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func wireString(w []outcome.Wire) string {
	return "[" + outcome.Join(w, ", ") + "]"
}

func endpoint(name, addr string) string {
	if addr == "" || addr == name {
		return name
	}
	return name + " (" + addr + ")"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
