package translate

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshtls/meshtls/mesh"
)

// update rewrites the golden files: `go test ./translate/ -update`, then
// review the diff (it is part of the change).
var update = flag.Bool("update", false, "rewrite testdata/golden from the current translation")

// goldenBundles are the bundles whose every proxy has a golden file (the
// scenarios users copy and the benchmark matrix), each directory by the
// name of its golden subdirectory.
var goldenBundles = []struct{ dir, name string }{
	{"../scenarios/testdata", "scenarios"},
	{"../bench/matrix", "matrix"},
}

const goldenDir = "testdata/golden"

// goldenPrefix places workloads as `meshtls translate` does, so the golden
// files read like its output.
var goldenPrefix = netip.MustParsePrefix("10.88.0.0/24")

// TestGolden translates every proxy of every shipped bundle and compares
// the resources with testdata/golden/{scenarios,matrix}/<bundle>/<namespace>.<name>.json.
// Certificates are random per run, so the golden files carry what a
// certificate says (subject, issuer, SANs) instead of its bytes, and no key.
func TestGolden(t *testing.T) {
	want := map[string]bool{} // golden files this run produces
	for _, gb := range goldenBundles {
		dir := gb.dir
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no bundles in %s", dir)
		}
		for _, file := range files {
			bundle := strings.TrimSuffix(filepath.Base(file), ".yaml")
			out := filepath.Join(goldenDir, gb.name, bundle)
			m, err := mesh.Load(file)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			env := &Env{Addrs: m.AddressPlan(goldenPrefix), Certs: testStore(t)}
			for _, w := range m.Workloads {
				if !w.HasProxy() {
					continue
				}
				path := filepath.Join(out, w.Namespace+"."+w.Name+".json")
				want[path] = true
				t.Run(gb.name+"/"+bundle+"/"+w.ID(), func(t *testing.T) {
					res, err := Translate(m, w, env)
					if err != nil {
						t.Fatal(err)
					}
					got, err := goldenJSON(res)
					if err != nil {
						t.Fatal(err)
					}
					compareGolden(t, path, got)
				})
			}
		}
	}
	// A golden file no bundle produces any more is stale.
	_ = filepath.WalkDir(goldenDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || want[path] {
			return err
		}
		if *update {
			return os.Remove(path)
		}
		t.Errorf("%s: no bundle proxy produces it any more: run `go test ./translate/ -run TestGolden -update`", path)
		return nil
	})
	if *update {
		removeEmptyDirs(goldenDir)
	}
}

// removeEmptyDirs removes the directories under root left empty by stale
// golden files (a bundle that was renamed or removed).
func removeEmptyDirs(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() {
			p := filepath.Join(root, e.Name())
			removeEmptyDirs(p)
			_ = os.Remove(p) // fails, as wanted, while p holds files
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantB, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run `go test ./translate/ -run TestGolden -update` and review the new file", err)
	}
	if !bytes.Equal(wantB, got) {
		t.Errorf("%s differs from the translation:\n%s\nif the change is intended, run `go test ./translate/ -run TestGolden -update` and review the diff", path, firstDiff(wantB, got))
	}
}

// firstDiff shows the first differing line with a little context.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  golden: %s\n  now:    %s", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}

// goldenJSON renders the resources as stable JSON: protojson's output is
// deliberately unstable in its spacing, so it is decoded and re-encoded
// with sorted keys; certificates become their description and keys
// disappear.
func goldenJSON(res *Resources) ([]byte, error) {
	doc := map[string]any{}
	add := func(kind string, msgs []proto.Message) error {
		list := []any{}
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				return err
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return err
			}
			list = append(list, describePEM(v))
		}
		doc[kind] = list
		return nil
	}
	for _, k := range []struct {
		kind string
		msgs []proto.Message
	}{
		{"listeners", protoMsgs(res.Listeners)},
		{"clusters", protoMsgs(res.Clusters)},
		{"routes", protoMsgs(res.Routes)},
		{"endpoints", protoMsgs(res.Endpoints)},
		{"secrets", protoMsgs(res.Secrets)},
	} {
		if err := add(k.kind, k.msgs); err != nil {
			return nil, err
		}
	}
	doc["decisions"] = res.Decisions
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func protoMsgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// describePEM replaces every inline data source holding PEM (protojson
// writes inlineBytes as base64) with what its certificates say, and a
// private key with Redacted.
func describePEM(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			s, isString := x.(string)
			if !isString || (k != "inlineBytes" && k != "inlineString") {
				v[k] = describePEM(x)
				continue
			}
			data := []byte(s)
			if k == "inlineBytes" {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil {
					data = b
				}
			}
			if d, ok := pemText(data); ok {
				delete(v, k)
				v["pem"] = d
			}
		}
	case []any:
		for i := range v {
			v[i] = describePEM(v[i])
		}
	}
	return v
}

// pemText describes PEM data: each certificate by subject, issuer and SANs
// (serials, keys and validity change every run), a key as Redacted.
func pemText(data []byte) (any, bool) {
	var out []string
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			out = append(out, Redacted)
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			out = append(out, blk.Type+" (unparsable: "+err.Error()+")")
			continue
		}
		var sans []string
		sans = append(sans, c.DNSNames...)
		for _, u := range c.URIs {
			sans = append(sans, u.String())
		}
		for _, ip := range c.IPAddresses {
			sans = append(sans, ip.String())
		}
		slices.Sort(sans)
		d := "certificate subject=" + c.Subject.String() + " issuer=" + c.Issuer.String()
		if c.IsCA {
			d += " CA"
		}
		if len(sans) > 0 {
			d += " SANs=" + strings.Join(sans, ",")
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}
