package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/moby/client"

	"github.com/meshtls/meshtls/docker"
	"github.com/meshtls/meshtls/envoybin"
	"github.com/meshtls/meshtls/pod"
)

// Images names the two images a run uses.
type Images struct {
	Pod   string // the in-pod programs (agent, init)
	Envoy string // sidecars and gateways
}

// file is one entry of an image build context.
type file struct {
	name string // path inside the context
	src  string // host path, or "" when data is set
	data []byte
	mode int64
}

var (
	imagesOnce sync.Mutex
	imagesDone = map[string]Images{}
)

// WithEnvoyVersion runs Envoy v, a pinned release from the user cache
// (`meshtls setup --envoy-version v` installs it); default: ENVOY_VERSION,
// else the Envoy envoybin.Find picks.
func WithEnvoyVersion(v string) Option { return func(o *options) { o.envoyVersion = v } }

// ensureImages builds (once per content and engine) the pod and Envoy images, or uses
// ENVOY_IMAGE for Envoy. Tags are content hashes, so a second run reuses them.
// envoyVersion selects a pinned Envoy from the user cache ("": ENVOY_VERSION,
// else the search of envoybin.Find).
func ensureImages(ctx context.Context, cli *client.Client, envoyVersion string, logf func(string, ...any)) (Images, error) {
	imagesOnce.Lock()
	defer imagesOnce.Unlock()
	key := cli.DaemonHost() + "|" + os.Getenv("ENVOY_IMAGE") + "|" + os.Getenv("ENVOY_BINARY") + "|" + os.Getenv("MESHTLS_POD_BINARY") + "|" + envoybin.Requested(envoyVersion)
	if im, ok := imagesDone[key]; ok {
		return im, nil
	}
	// Both binaries are found before anything is built, so a missing one
	// fails at once with its fix.
	podFiles, err := podRootfs()
	if err != nil {
		return Images{}, err
	}
	var envoyBin string
	if img, v := os.Getenv("ENVOY_IMAGE"), envoybin.Requested(envoyVersion); img != "" && v != "" {
		return Images{}, fmt.Errorf("ENVOY_IMAGE=%s and Envoy version %s (--envoy-version or ENVOY_VERSION) are both set; meshtls cannot tell the image's version: unset one", img, v)
	}
	if os.Getenv("ENVOY_IMAGE") == "" {
		if envoyBin, _, err = envoybin.Find(envoyVersion); err != nil {
			return Images{}, err
		}
	}
	// Test packages run as parallel processes: one builds, the others
	// then find the tag and reuse it.
	unlock, err := lockFile(filepath.Join(cacheDir(), "images.lock"))
	if err != nil {
		return Images{}, err
	}
	defer unlock()
	var im Images
	im.Pod, err = buildImage(ctx, cli, "meshtls/pod", append(podFiles,
		file{name: "Dockerfile", data: docker.PodDockerfile, mode: 0o644}), logf)
	if err != nil {
		return Images{}, fmt.Errorf("building the pod image: %w", err)
	}
	prunePodImages(ctx, cli, logf)
	if im.Envoy = os.Getenv("ENVOY_IMAGE"); im.Envoy != "" {
		if _, err := cli.ImageInspect(ctx, im.Envoy); err != nil {
			return Images{}, fmt.Errorf("ENVOY_IMAGE=%s is not in the local Docker engine (meshtls never pulls): docker pull it first, or unset ENVOY_IMAGE to build one from an Envoy binary: %w", im.Envoy, err)
		}
	} else {
		files, err := envoyRootfs(envoyBin)
		if err != nil {
			return Images{}, err
		}
		files = append(files, file{name: "Dockerfile", data: docker.EnvoyDockerfile, mode: 0o644})
		if im.Envoy, err = buildImage(ctx, cli, "meshtls/envoy", files, logf); err != nil {
			return Images{}, fmt.Errorf("building the Envoy image from %s: %w", envoyBin, err)
		}
	}
	imagesDone[key] = im
	return im, nil
}

// podRootfs is the pod image's content: the running binary (or
// MESHTLS_POD_BINARY) at /meshtls-pod, where it runs the in-pod program
// (podrole.go), with the libraries it needs when it is not static.
func podRootfs() ([]file, error) {
	bin := os.Getenv("MESHTLS_POD_BINARY")
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the running binary for the pod image: %w", err)
		}
		bin = exe
	}
	files, err := elfRootfs(bin, "/"+pod.Exe)
	if err != nil {
		return nil, fmt.Errorf("the in-pod program: %w", err)
	}
	return files, nil
}

// lockFile takes an exclusive lock shared with other processes.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func cacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	d = filepath.Join(d, "meshtls")
	_ = os.MkdirAll(d, 0o755)
	return d
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// envoyRootfs lists Envoy with what it needs to run (elfRootfs) and the
// system CA bundle that SIMPLE origination without a CA trusts.
func envoyRootfs(bin string) ([]file, error) {
	files, err := elfRootfs(bin, "/usr/local/bin/envoy")
	if err != nil {
		return nil, err
	}
	if ca := systemCABundle(); ca != "" {
		files = append(files, file{name: "rootfs" + osTrustStore, src: ca, mode: 0o644})
	}
	return files, nil
}

// osTrustStore is where Envoy (and Debian-like systems) find the OS roots;
// a run mounts its own there: this machine's bundle plus the public CA.
const osTrustStore = "/etc/ssl/certs/ca-certificates.crt"

// systemCABundle is this machine's CA bundle (Debian's or Red Hat's path),
// "" when it has none.
func systemCABundle() string {
	for _, ca := range []string{osTrustStore, "/etc/pki/tls/certs/ca-bundle.crt"} {
		if fileExists(ca) {
			return ca
		}
	}
	return ""
}

// elfRootfs lists a Linux binary at dest, its ELF interpreter and the shared
// libraries it needs (resolved like the dynamic loader's default paths): a
// dynamically linked binary runs in a FROM-scratch image.
func elfRootfs(bin, dest string) ([]file, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Linux executable (%v): containers need one built for linux/%s", bin, err, runtime.GOARCH)
	}
	defer f.Close()
	files := []file{{name: "rootfs" + dest, src: bin, mode: 0o755}}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, err
			}
			interp := strings.TrimRight(string(b), "\x00")
			files = append(files, file{name: "rootfs" + interp, src: interp, mode: 0o755})
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, err
	}
	dirs := []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	for _, lib := range libs {
		found := ""
		for _, d := range dirs {
			if p := filepath.Join(d, lib); fileExists(p) {
				found = p
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s needs %s, which is not on this machine", bin, lib)
		}
		files = append(files, file{name: "rootfs" + found, src: found, mode: 0o755})
	}
	return files, nil
}

// buildImage builds repo:<content hash> from files unless it exists.
func buildImage(ctx context.Context, cli *client.Client, repo string, files []file, logf func(string, ...any)) (string, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	h := sha256.New()
	for _, fl := range files {
		fmt.Fprintf(h, "%s %o\n", fl.name, fl.mode)
		if err := hashInto(h, fl); err != nil {
			return "", err
		}
	}
	tag := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	logf("building image %s", tag)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, files)) }()
	res, err := cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{labelImage: "true"},
	})
	if err != nil {
		pr.CloseWithError(err)
		return "", err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	var out strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("reading build output: %w", err)
		}
		out.WriteString(msg.Stream)
		if msg.Error != "" {
			return "", fmt.Errorf("%s\n%s", msg.Error, out.String())
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return "", fmt.Errorf("image %s missing after build:\n%s", tag, out.String())
	}
	return tag, nil
}

func hashInto(w io.Writer, fl file) error {
	if fl.src == "" {
		_, err := w.Write(fl.data)
		return err
	}
	f, err := os.Open(fl.src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func writeTar(w io.Writer, files []file) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, fl := range files {
		// Parent directories first, so the image has them with sane modes.
		parts := strings.Split(filepath.Dir(fl.name), "/")
		for i := range parts {
			d := strings.Join(parts[:i+1], "/")
			if d == "." || dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
		}
		var r io.Reader
		size := int64(len(fl.data))
		if fl.src != "" {
			f, err := os.Open(fl.src)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			size, r = st.Size(), f
		} else {
			r = bytes.NewReader(fl.data)
		}
		if err := tw.WriteHeader(&tar.Header{Name: fl.name, Mode: fl.mode, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return err
		}
	}
	return tw.Close()
}
