package crosscheck

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshtls/meshtls/translate"
)

// DefaultAllowlist is the allowlist's path from the repository root.
const DefaultAllowlist = "crosscheck/allowlist.yaml"

// Options of Diff.
type Options struct {
	Oracle    string     // the oracle program (FindOracle)
	Allowlist *Allowlist // nil: nothing is explained
	// Full prints every line of both skeletons, not only the differences.
	Full bool
}

// Diff compares every bundle file with istiod's config and writes the
// report to w: per proxy, the lines of both skeletons that differ (all
// lines with Full), behavioural ones first. It returns every difference.
func Diff(ctx context.Context, files []string, opt Options, w io.Writer) ([]Difference, error) {
	var bundles []*Bundle
	for _, f := range files {
		b, err := LoadBundle(f)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, b)
	}
	version, istio, err := Generate(ctx, opt.Oracle, bundles)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "istiod %s (Istio's own config generator) vs meshtls\n", version)
	var all []Difference
	for i, b := range bundles {
		ours := map[string]*translate.Resources{}
		for _, wl := range b.Mesh.Workloads {
			if !wl.HasProxy() {
				continue
			}
			res, err := translate.Translate(b.Mesh, wl, &translate.Env{Addrs: b.Addrs})
			if err != nil {
				return nil, err
			}
			ours[wl.ID()] = res
		}
		reports, diffs := Compare(b, istio[i], ours, opt.Allowlist)
		all = append(all, diffs...)
		fmt.Fprintf(w, "\n== %s\n", b.Name)
		for _, n := range istio[i].Notes {
			fmt.Fprintf(w, "   oracle: %s\n", n)
		}
		for _, r := range reports {
			writeProxy(w, r, diffs, opt.Full)
		}
	}
	var fail, allowed, structural int
	for _, d := range all {
		switch {
		case d.Unexplained():
			fail++
		case d.Behaviour:
			allowed++
		default:
			structural++
		}
	}
	fmt.Fprintf(w, "\n%d bundles: %d unexplained behavioural differences, %d allowed, %d structural (reported only)\n", len(bundles), fail, allowed, structural)
	return all, nil
}

func writeProxy(w io.Writer, r ProxyReport, diffs []Difference, full bool) {
	fmt.Fprintf(w, "-- proxy %s\n", r.Proxy)
	byKey := map[string]Difference{}
	for _, d := range diffs {
		if d.Proxy == r.Proxy {
			byKey[d.Key] = d
		}
	}
	for _, pass := range []bool{true, false} { // behaviour first
		for _, k := range r.Keys {
			d, differs := byKey[k]
			l, ok := r.Istio[k]
			if !ok {
				l = r.Ours[k]
			}
			if l.Behaviour != pass {
				continue
			}
			switch {
			case !differs && full:
				fmt.Fprintf(w, "   = %s: %s\n", k, l.Value)
			case differs:
				mark := "~" // structural
				if d.Unexplained() {
					mark = "!"
				} else if d.Behaviour {
					mark = "a" // allowed
				}
				fmt.Fprintf(w, " %s %s\n     istiod:  %s\n     meshtls: %s\n", mark, k, d.Istio, d.Meshtls)
				if d.Allowed != "" {
					fmt.Fprintf(w, "     allowed: %s\n", strings.TrimSpace(d.Allowed))
				}
			}
		}
	}
}
