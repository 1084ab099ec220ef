package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	dirMode  fs.FileMode = 0o755
	certMode fs.FileMode = 0o644
	keyMode  fs.FileMode = 0o600
)

// WriteCAs writes every CA certificate of set as dir/<name>.pem (mode 0644),
// creating dir with mode 0755 if needed. Only certificates are written, never
// CA keys. Containers mount this directory at /etc/meshtls/ca.
func WriteCAs(dir string, set *Set) error {
	if set == nil {
		return errors.New("certs: WriteCAs: nil CA set; create one with NewSet")
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	for _, name := range Names() {
		ca, err := set.ByName(name)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, name+".pem"), ca.CertPEM, certMode); err != nil {
			return err
		}
	}
	return nil
}

// WriteOSTrustStore writes path (mode 0644): the system CA bundle given
// (the machine's, as the Envoy image carries it; may be empty) followed by
// the public CA's certificate. Containers mount it over
// /etc/ssl/certs/ca-certificates.crt, the OS trust store Envoy reads for
// SIMPLE/MUTUAL origination without a CA (Istio's "file-root:system"), so
// the public CA is trusted there and the other CAs are not.
func WriteOSTrustStore(path string, system []byte, set *Set) error {
	if set == nil || set.Public == nil {
		return errors.New("certs: WriteOSTrustStore: no public CA; create the set with NewSet")
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	data := append([]byte(nil), system...)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, set.Public.CertPEM...)
	return writeFileAtomic(path, data, certMode)
}

// WriteKeyPair writes dir/base.crt (leaf certificate only, mode 0644) and
// dir/base.key (PKCS#8 key, mode 0600), creating dir with mode 0755 if needed.
// The key file is created 0600 from the start (never chmod-ed down after the
// key is in it) and replaced atomically. If a key file already exists with
// group or other permission bits it is refused rather than overwritten, since
// such a file means something else is handling keys carelessly.
func WriteKeyPair(dir, base string, kp *KeyPair) error {
	if kp == nil || len(kp.CertPEM) == 0 || len(kp.KeyPEM) == 0 {
		return fmt.Errorf("certs: WriteKeyPair %q: key pair is empty; issue it from a CA first", base)
	}
	if base == "" || base != filepath.Base(base) {
		return fmt.Errorf("certs: WriteKeyPair: base name %q must be a plain file name without directories", base)
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	keyPath := filepath.Join(dir, base+".key")
	if fi, err := os.Lstat(keyPath); err == nil {
		if fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("certs: existing key file %s has mode %04o, readable beyond its owner; remove it (or chmod 600) before writing a key there",
				keyPath, fi.Mode().Perm())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("certs: check key file %s: %w", keyPath, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, base+".crt"), kp.CertPEM, certMode); err != nil {
		return err
	}
	return writeFileAtomic(keyPath, kp.KeyPEM, keyMode)
}

// ensureDir creates dir with mode 0755. An existing directory is left as it
// is (chmod-ing e.g. a shared temp dir would be wrong).
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("certs: empty directory name")
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("certs: %s exists and is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("certs: stat %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("certs: create directory %s: %w", dir, err)
	}
	// MkdirAll's mode is filtered by the umask; containers running as
	// another user (Envoy is uid 1337) must still be able to traverse it.
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("certs: chmod directory %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in the same directory and
// renames it over path, so readers never see a half-written file. The
// temporary file is created with mode 0600 (os.CreateTemp) and set to mode
// before any byte is written, so a key never sits in a more open file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("certs: chmod %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("certs: close %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: rename %s to %s: %w", tmp, path, err)
	}
	return nil
}
