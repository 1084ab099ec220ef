package harness

import (
	"context"
	"fmt"

	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/translate"
)

// ConfigGenerator builds the Envoy config of proxies (workloads with a
// proxy, all of m's) in one call, by workload ID: the control plane's side
// of a push. env carries the run's address plan (pods and cluster IPs) and
// certificate store; every secret the config names must be in its
// Resources. A missing proxy in the answer is an error.
//
// The default is meshtls's own translator (Translator); package crosscheck
// supplies istiod's (docs/oracle.md, the live differential).
type ConfigGenerator func(ctx context.Context, m *mesh.Mesh, env *translate.Env, proxies []*mesh.Workload) (map[string]*translate.Resources, error)

// Translator is meshtls's translator as a ConfigGenerator: translate.Translate
// for each proxy.
func Translator(_ context.Context, m *mesh.Mesh, env *translate.Env, proxies []*mesh.Workload) (map[string]*translate.Resources, error) {
	out := make(map[string]*translate.Resources, len(proxies))
	for _, w := range proxies {
		res, err := translate.Translate(m, w, env)
		if err != nil {
			return nil, fmt.Errorf("translating config for %s: %w", w.ID(), err)
		}
		out[w.ID()] = res
	}
	return out, nil
}

// WithConfigGenerator serves the proxies g's config in place of meshtls's
// translator, from the first push on (nil: the translator).
func WithConfigGenerator(g ConfigGenerator) Option { return func(o *options) { o.generator = g } }

// SetConfigGenerator serves every proxy g's config from now on (nil: the
// translator) and returns once every proxy has ACKed it with no listener
// warming: the same pods under another control plane.
func (r *Runtime) SetConfigGenerator(ctx context.Context, g ConfigGenerator) error {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	r.opts.generator = g
	r.configs = nil // another control plane: every proxy gets its config
	return r.pushAll(ctx)
}

// push generates the config of ws with the run's generator, hands it to
// the xDS server and returns each proxy's version (by workload ID). With
// meshtls's translator, a proxy whose inputs are those of its last
// translation is not translated again: the server already has its config
// (translate.Inputs); another generator's inputs are unknown, so it
// generates every proxy. The xDS server in turn sends a proxy only the
// types whose content changed. r.lastPush counts what was done.
func (r *Runtime) push(ctx context.Context, ws []*mesh.Workload) (map[string]string, error) {
	gen := r.opts.generator
	keyed := gen == nil
	if gen == nil {
		gen = Translator
	}
	versions := make(map[string]string, len(ws))
	keys := map[string]string{}
	var todo []*mesh.Workload
	for _, w := range ws {
		r.lastPush.Proxies++
		if keyed {
			keys[w.ID()] = r.inputs.Key(w)
			if last, ok := r.configs[w.ID()]; ok && last.key == keys[w.ID()] {
				versions[w.ID()] = last.version
				continue
			}
		}
		todo = append(todo, w)
	}
	if len(todo) == 0 {
		return versions, nil
	}
	byID, err := gen(ctx, r.mesh, &translate.Env{Addrs: r.addrs, Certs: r.certs}, todo)
	if err != nil {
		return nil, err
	}
	if r.configs == nil {
		r.configs = map[string]proxyConfig{}
	}
	for _, w := range todo {
		res, ok := byID[w.ID()]
		if !ok || res == nil {
			return nil, fmt.Errorf("the config generator gave no config for proxy %s", w.ID())
		}
		r.lastPush.Translated++
		r.setDecisions(w.ID(), res.Decisions)
		v, err := r.xds.Set(w.ID(), res)
		if err != nil {
			return nil, err
		}
		if v != r.configs[w.ID()].version {
			r.lastPush.Pushed++
		}
		// keys[id] is "" for another generator: never reused.
		r.configs[w.ID()] = proxyConfig{key: keys[w.ID()], version: v}
		versions[w.ID()] = v
	}
	return versions, nil
}

// proxies are the workloads of m that run a proxy.
func proxies(m *mesh.Mesh) []*mesh.Workload {
	var out []*mesh.Workload
	for _, w := range m.Workloads {
		if w.HasProxy() {
			out = append(out, w)
		}
	}
	return out
}
