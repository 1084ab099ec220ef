package mesh

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Strict field checking. encoding/json's DisallowUnknownFields and protojson
// both stop at the first unknown field and do not say where it was; these
// walkers compare the decoded JSON tree with the target type and report every
// unknown field and enum value with its full path. istio.io/api's generated
// UnmarshalJSON uses jsonpb with AllowUnknownFields: true
// (networking/v1alpha3/*_json.gen.go), which is why specs are checked here
// and then decoded with protojson (DiscardUnknown false) rather than through
// the client-go types.

// report receives one problem: the field path and what is wrong.
type report func(field, msg string)

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// jsonFields lists the JSON names of a struct type, following inline and
// anonymous embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		ft := f.Type
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
	return out
}

// checkGo reports JSON object keys that t has no field for, recursively.
// Types with their own UnmarshalJSON (IntOrString, Time, Quantity) are leaves.
func checkGo(path string, t reflect.Type, v any, rep report) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type mismatch; json.Unmarshal reports it
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				rep(joinPath(path, k), fmt.Sprintf("unknown field %q (allowed: %s)", k, strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			checkGo(joinPath(path, k), ft, obj[k], rep)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return
		}
		for i, e := range arr {
			checkGo(fmt.Sprintf("%s[%d]", path, i), t.Elem(), e, rep)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for _, k := range sortedKeys(obj) {
			checkGo(fmt.Sprintf("%s[%s]", path, k), t.Elem(), obj[k], rep)
		}
	}
}

// checkProto reports unknown fields and enum values against a message
// descriptor. Both the JSON (lowerCamel) and proto (snake_case) names are
// accepted, as protojson does. Well-known types are left to protojson.
func checkProto(path string, md protoreflect.MessageDescriptor, v any, rep report) {
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			rep(path, fmt.Sprintf("expected an object, got %s", jsonTypeName(v)))
		}
		return
	}
	fields := md.Fields()
	for _, k := range sortedKeys(obj) {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		p := joinPath(path, k)
		if fd == nil {
			var allowed []string
			for i := 0; i < fields.Len(); i++ {
				allowed = append(allowed, fields.Get(i).JSONName())
			}
			slices.Sort(allowed)
			rep(p, fmt.Sprintf("unknown field %q (allowed: %s)", k, strings.Join(allowed, ", ")))
			continue
		}
		val := obj[k]
		if val == nil {
			continue
		}
		switch {
		case fd.IsList():
			arr, ok := val.([]any)
			if !ok {
				rep(p, fmt.Sprintf("expected a list, got %s", jsonTypeName(val)))
				continue
			}
			for i, e := range arr {
				checkProtoValue(fmt.Sprintf("%s[%d]", p, i), fd, e, rep)
			}
		case fd.IsMap():
			m, ok := val.(map[string]any)
			if !ok {
				rep(p, fmt.Sprintf("expected a map, got %s", jsonTypeName(val)))
				continue
			}
			for _, mk := range sortedKeys(m) {
				checkProtoValue(fmt.Sprintf("%s[%s]", p, mk), fd.MapValue(), m[mk], rep)
			}
		default:
			checkProtoValue(p, fd, val, rep)
		}
	}
}

func checkProtoValue(path string, fd protoreflect.FieldDescriptor, v any, rep report) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		checkProto(path, fd.Message(), v, rep)
	case protoreflect.EnumKind:
		s, ok := v.(string)
		if !ok {
			return // numbers are valid protojson; protojson checks the rest
		}
		vals := fd.Enum().Values()
		if vals.ByName(protoreflect.Name(s)) != nil {
			return
		}
		var allowed []string
		for i := 0; i < vals.Len(); i++ {
			allowed = append(allowed, string(vals.Get(i).Name()))
		}
		rep(path, fmt.Sprintf("unknown value %q (allowed: %s)", s, strings.Join(allowed, ", ")))
	}
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
