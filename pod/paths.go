package pod

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Paths locates the files the agent reads. In a pod these are the fixed
// CertDir and CADir; tests point them at a temporary directory.
type Paths struct {
	CertDir string // <name>.crt / <name>.key
	CADir   string // <name>.pem
}

// DefaultPaths are the in-pod locations from api.go.
func DefaultPaths() Paths { return Paths{CertDir: CertDir, CADir: CADir} }

// LoadKeyPair loads CertDir/<name>.crt and CertDir/<name>.key.
func (p Paths) LoadKeyPair(name string) (tls.Certificate, error) {
	crt := filepath.Join(p.CertDir, name+".crt")
	key := filepath.Join(p.CertDir, name+".key")
	c, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load key pair %q (%s, %s): %w; the harness writes it into the pod's cert dir", name, crt, key, err)
	}
	return c, nil
}

// CAPool builds a pool from CADir/<name>.pem for each name. A missing or
// empty file is an error: trusting less than asked would change results.
func (p Paths) CAPool(names []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, n := range names {
		f := filepath.Join(p.CADir, n+".pem")
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA %q: %w", n, err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA %q: %s holds no PEM certificate", n, f)
		}
	}
	return pool, nil
}

// tlsInfo describes a finished TLS session; peer is the other side's leaf.
func tlsInfo(st tls.ConnectionState, sni string) *TLSInfo {
	ti := &TLSInfo{
		Version: tlsVersionName(st.Version),
		SNI:     sni,
		ALPN:    st.NegotiatedProtocol,
	}
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		ti.PeerSubject = c.Subject.String()
		ti.PeerIssuer = c.Issuer.String()
		ti.PeerSerial = hex.EncodeToString(c.SerialNumber.Bytes())
		ti.PeerDNS = c.DNSNames
		for _, u := range c.URIs {
			ti.PeerURIs = append(ti.PeerURIs, u.String())
		}
	}
	return ti
}

// tlsVersionName spells versions the way Envoy's access log does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	case 0x0300:
		return "SSLv3"
	}
	return fmt.Sprintf("0x%04x", v)
}
