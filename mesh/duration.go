package mesh

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Durations as Istio reads them. istio.io/api decodes specs with
// github.com/golang/protobuf/jsonpb (networking/v1alpha3/*_json.gen.go),
// whose google.protobuf.Duration is time.ParseDuration: "5s", "250ms",
// "24h" and "1h30m" are all valid, where protojson takes only seconds
// ("5s", "1.5s"). The CRDs then require most duration fields to be at least
// 1ms (x-kubernetes-validations `duration(self) >= duration('1ms')` in
// manifests/charts/base/files/crd-all.gen.yaml); the fields listed in
// durationMayBeZero carry no such rule.

// durationMayBeZero: duration fields (by JSON name, the last path element
// under the named parent) whose CRD schema has no minimum.
var durationMayBeZero = map[string]bool{
	"tcp.idleTimeout": true, // 0 disables it
	"backendUtilization.weightExpirationPeriod":    true,
	"backendUtilization.weightStabilizationPeriod": true,
	"backendUtilization.weightUpdatePeriod":        true,
	"httpCookie.ttl":                               true,
	"retryBudget.budgetInterval":                   true,
	// The mesh config (data.mesh of the ConfigMap) has no CRD schema.
	"mesh.protocolDetectionTimeout": true,
	"mesh.connectTimeout":           true,
	"mesh.hboneIdleTimeout":         true,
	"mesh.dnsRefreshRate":           true,
}

const durationFix = "a number with a unit (h, m, s, ms, us, ns), e.g. 5s, 250ms, 24h, 1h30m"

// normalizeDurations rewrites every google.protobuf.Duration string in v
// (a decoded JSON spec of message md) from Go syntax to protojson's
// seconds form, in place, and reports values Istio would refuse.
func normalizeDurations(path string, md protoreflect.MessageDescriptor, v any, rep report) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	fields := md.Fields()
	for k, val := range obj {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		if fd == nil || fd.Message() == nil || val == nil {
			continue
		}
		p := joinPath(path, k)
		switch {
		case fd.IsMap():
			if m, ok := val.(map[string]any); ok && fd.MapValue().Message() != nil {
				for mk, mv := range m {
					normalizeDurations(fmt.Sprintf("%s[%s]", p, mk), fd.MapValue().Message(), mv, rep)
				}
			}
		case fd.Message().FullName() == "google.protobuf.Duration":
			if fd.IsList() {
				continue // no Istio field is a list of durations
			}
			if s, ok := durationValue(p, val, durationMayBeZero[parentKey(path, fd.JSONName())], rep); ok {
				obj[k] = s
			}
		case fd.IsList():
			if arr, ok := val.([]any); ok {
				for i, e := range arr {
					normalizeDurations(fmt.Sprintf("%s[%d]", p, i), fd.Message(), e, rep)
				}
			}
		default:
			normalizeDurations(p, fd.Message(), val, rep)
		}
	}
}

// parentKey names a duration field by its parent's JSON field name and its
// own ("tcp.idleTimeout"), the way durationMayBeZero lists them.
func parentKey(path, field string) string {
	parent := path
	if i := strings.LastIndex(parent, "."); i >= 0 {
		parent = parent[i+1:]
	}
	if i := strings.Index(parent, "["); i >= 0 {
		parent = parent[:i]
	}
	return parent + "." + field
}

// durationValue parses one duration as Istio does and returns it in
// protojson's form.
func durationValue(field string, v any, mayBeZero bool, rep report) (string, bool) {
	s, ok := v.(string)
	if !ok {
		rep(field, fmt.Sprintf("expected a duration string, got %s: write %s", jsonTypeName(v), durationFix))
		return "", false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		rep(field, fmt.Sprintf("invalid duration %q: write %s", s, durationFix))
		return "", false
	}
	if d < 0 {
		rep(field, fmt.Sprintf("duration %q must not be negative", s))
		return "", false
	}
	if !mayBeZero && d < time.Millisecond {
		rep(field, fmt.Sprintf("duration %q must be at least 1ms (Istio's CRD validation)", s))
		return "", false
	}
	return fmt.Sprintf("%d.%09ds", d/time.Second, d%time.Second), true
}
