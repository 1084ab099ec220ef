package crosscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"sigs.k8s.io/yaml"
)

// Allowlist explains deliberate deviations from istiod's config. Each
// entry matches a difference by regular expressions and says why.
type Allowlist struct {
	Entries []AllowEntry
}

// AllowEntry is one allowed difference: Key matches "BUNDLE PROXY KEY" (bundle as its file name);
// Istio and Meshtls, when given, match the two values. Reason is required.
// Live entries explain differences of the live differential (a check's
// outcome on the same pods under both control planes: PROXY is the
// check's client, KEY "check NAME"), the others those of the static one.
type AllowEntry struct {
	Key     string `json:"key"`
	Istio   string `json:"istio,omitempty"`
	Meshtls string `json:"meshtls,omitempty"`
	Live    bool   `json:"live,omitempty"`
	Reason  string `json:"reason"`

	key, istio, meshtls *regexp.Regexp
	used                bool
}

// LoadAllowlist reads the allowlist file (YAML list of entries).
func LoadAllowlist(path string) (*Allowlist, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entries []AllowEntry
	if err := yaml.UnmarshalStrict(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range entries {
		e := &entries[i]
		if e.Reason == "" || e.Key == "" {
			return nil, fmt.Errorf("%s: entry %d: key and reason are required", path, i+1)
		}
		var errs [3]error
		e.key, errs[0] = regexp.Compile(e.Key)
		e.istio, errs[1] = regexp.Compile(e.Istio)
		e.meshtls, errs[2] = regexp.Compile(e.Meshtls)
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("%s: entry %d: %w", path, i+1, err)
			}
		}
	}
	return &Allowlist{Entries: entries}, nil
}

// Explain returns the reason of the first entry matching d, or "".
func (a *Allowlist) Explain(d Difference) string {
	if a == nil {
		return ""
	}
	subject := filepath.Base(d.Bundle) + " " + d.Proxy + " " + d.Key
	for i := range a.Entries {
		e := &a.Entries[i]
		if e.Live == d.Live && e.key.MatchString(subject) && e.istio.MatchString(d.Istio) && e.meshtls.MatchString(d.Meshtls) {
			e.used = true
			return e.Reason
		}
	}
	return ""
}

// Unused lists the static (live: the live) entries that explained
// nothing (stale entries).
func (a *Allowlist) Unused(live bool) []AllowEntry {
	var out []AllowEntry
	for _, e := range a.Entries {
		if e.Live == live && !e.used {
			out = append(out, e)
		}
	}
	return out
}
