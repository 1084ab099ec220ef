package harness

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// validationBase places workloads when a bundle is translated without a
// network, in a network as wide as the run's would be (the benchmarking
// range 198.18.0.0/15: addresses only ever written into config, never
// used). Translation does not depend on which prefix the run's network gets.
var validationBase = netip.MustParseAddr("198.18.0.0")

// LoadScenario loads one bundle file and translates the config of every proxy
// it declares, exactly as a run would before pushing it: `validate` and `run`
// accept and refuse the same bundles. Errors are a *mesh.ValidationError.
func LoadScenario(file string) (Scenario, error) {
	m, err := mesh.Load(file)
	if err != nil {
		return Scenario{}, err
	}
	if err := CheckTranslation(m); err != nil {
		return Scenario{}, err
	}
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	return Scenario{Name: name, File: file, Mesh: m}, nil
}

// CheckTranslation translates every proxy's config (certificates issued from
// a throw-away CA set, so credential Secrets are checked too) and returns
// each distinct problem once, as a *mesh.ValidationError naming the file and
// document of the resource it is about where the message names one.
func CheckTranslation(m *mesh.Mesh) error {
	set, err := certs.NewSet()
	if err != nil {
		return err
	}
	bits, err := runNetworkBits(m)
	if err != nil {
		p := mesh.Problem{Message: err.Error()}
		if len(m.Workloads) > 0 {
			p.Source = m.Workloads[len(m.Workloads)-1].Source
		}
		return &mesh.ValidationError{Problems: []mesh.Problem{p}}
	}
	prefix := netip.PrefixFrom(validationBase, bits)
	env := &translate.Env{Addrs: m.AddressPlan(prefix), Certs: certs.NewStore(set)}
	var probs []mesh.Problem
	seen := map[string]bool{}
	for _, w := range m.Workloads {
		if !w.HasProxy() {
			continue
		}
		_, err := translate.Translate(m, w, env)
		for _, e := range leafErrors(err) {
			msg := strings.TrimPrefix(e.Error(), "translate "+w.ID()+": ")
			if seen[msg] {
				continue // the same resource problem seen from another proxy
			}
			seen[msg] = true
			probs = append(probs, problemOf(m, w, msg))
		}
	}
	if len(probs) > 0 {
		return &mesh.ValidationError{Problems: probs}
	}
	return nil
}

// leafErrors flattens the errors.Join tree Translate returns.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	if u := errors.Unwrap(err); u != nil {
		if _, ok := u.(interface{ Unwrap() []error }); ok {
			return leafErrors(u)
		}
	}
	return []error{err}
}

// problemOf turns a translation message "Kind ns/name: rest" into a Problem
// with the resource's file and document; other messages name the proxy.
func problemOf(m *mesh.Mesh, proxy *mesh.Workload, msg string) mesh.Problem {
	head, rest, ok := strings.Cut(msg, ": ")
	if kind, name, ok2 := strings.Cut(head, " "); ok && ok2 {
		if src, found := m.Sources[kind+"/"+name]; found {
			return mesh.Problem{Source: src, Kind: kind, Name: name, Message: rest}
		}
	}
	return mesh.Problem{Source: proxy.Source, Kind: "Workload", Name: proxy.ID(),
		Message: fmt.Sprintf("translating its proxy config: %s", msg)}
}
