// Package certs holds the harness's certificate authorities and issues the
// credentials the mesh uses: SPIFFE workload identities, gateway and app
// server certificates, and client certificates. It touches no network.
//
// Every key is ECDSA P-256. Private keys are only ever kept in memory, handed
// to Envoy over SDS, or written with mode 0600 by WriteKeyPair; no value in
// this package prints its key through fmt.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// TrustDomain is the SPIFFE trust domain of every workload identity, as in a
// default Istio install (meshConfig.trustDomain defaults to "cluster.local").
const TrustDomain = "cluster.local"

// CA names. Every container finds the certificate of each as
// /etc/meshtls/ca/<name>.pem.
const (
	MeshCA      = "mesh"      // workload SPIFFE identities
	IngressCA   = "ingress"   // gateway server certificates
	AppCA       = "app"       // certificates of apps that terminate TLS themselves
	ClientCA    = "client"    // client certificates
	UntrustedCA = "untrusted" // same shapes as the others, trusted by nobody
	// PublicCA stands in for a public CA: its root is in every pod's OS
	// trust store (the system roots Envoy and apps verify with when told
	// no CA), so a server it certifies is trusted the way a public web
	// site is.
	PublicCA = "public"
)

// ClientCommonName is the subject CN of the client certificates Store.Client issues.
const ClientCommonName = "meshtls-client"

// Validity defaults. Leaves start an hour in the past so small clock skew
// between the test process and containers never makes a fresh cert "not yet
// valid". CAs start well before that so a leaf made with WithValidity in the
// recent past fails on its own dates, not because its CA was not yet valid.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	caBackdate   = 30 * 24 * time.Hour
	leafValidity = 30 * 24 * time.Hour
	backdate     = time.Hour
)

// Names returns the CA names in a fixed order.
func Names() []string {
	return []string{MeshCA, IngressCA, AppCA, ClientCA, UntrustedCA, PublicCA}
}

// SPIFFEID returns the workload identity spiffe://cluster.local/ns/NS/sa/SA,
// the form Istio issues (istio/istio pkg/spiffe/spiffe.go, MustGenSpiffeURI).
func SPIFFEID(ns, sa string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", TrustDomain, ns, sa)
}

// Serial returns the certificate's serial number as lowercase hex, two digits
// per byte with no separators (e.g. "0a1b..."). This is the form Envoy reports
// (admin /certs, %DOWNSTREAM_PEER_SERIAL%): envoyproxy/envoy
// source/common/tls/utility.cc getSerialNumberFromCertificate lowercases
// BoringSSL's BN_bn2hex, which prints whole bytes. Returns "" for nil.
func Serial(cert *x509.Certificate) string {
	if cert == nil || cert.SerialNumber == nil {
		return ""
	}
	return hex.EncodeToString(cert.SerialNumber.Bytes())
}

// ParseCertPEM parses the first CERTIFICATE block of data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("certs: no CERTIFICATE PEM block found; pass PEM text beginning with -----BEGIN CERTIFICATE-----")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: parse certificate: %w", err)
		}
		return cert, nil
	}
}

// CA is a self-signed certificate authority.
type CA struct {
	Name    string
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA creates a self-signed ECDSA P-256 CA whose subject CN is
// "meshtls <name> CA". Each call makes a new key, so two CAs with the same
// name do not trust each other's leaves.
func NewCA(name string) (*CA, error) {
	if name == "" {
		return nil, errors.New("certs: NewCA: empty CA name")
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"meshtls"}, CommonName: "meshtls " + name + " CA"},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse CA %q: %w", name, err)
	}
	return &CA{Name: name, Cert: cert, Key: key, CertPEM: certPEM(der)}, nil
}

// Pool returns a cert pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// String names the CA without its key.
// Value receivers, so printing a CA value is as safe as printing a pointer.
func (ca CA) String() string {
	return fmt.Sprintf("CA(%s serial=%s)", ca.Name, Serial(ca.Cert))
}

// GoString keeps %#v from dumping the key.
func (ca CA) GoString() string { return ca.String() }

// Format keeps every fmt verb (%v, %+v, %#v, %s...) from printing the key.
func (ca CA) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(ca.String())) }

// Option adjusts a leaf certificate before it is signed.
type Option func(*issueConfig)

type issueConfig struct {
	notBefore, notAfter time.Time
	serial              *big.Int
	dnsNames            []string
	ips                 []net.IP
	uris                []*url.URL
	commonName          *string
}

// WithValidity sets NotBefore and NotAfter, e.g. both in the past to make an
// expired certificate.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(c *issueConfig) { c.notBefore, c.notAfter = notBefore, notAfter }
}

// WithSerial sets the serial number instead of a random 128-bit one.
func WithSerial(serial *big.Int) Option {
	return func(c *issueConfig) { c.serial = new(big.Int).Set(serial) }
}

// WithDNSNames adds DNS SANs.
func WithDNSNames(names ...string) Option {
	return func(c *issueConfig) { c.dnsNames = append(c.dnsNames, names...) }
}

// WithIPAddresses adds IP SANs.
func WithIPAddresses(ips ...net.IP) Option {
	return func(c *issueConfig) { c.ips = append(c.ips, ips...) }
}

// WithURIs adds URI SANs.
func WithURIs(uris ...*url.URL) Option {
	return func(c *issueConfig) { c.uris = append(c.uris, uris...) }
}

// WithCommonName sets the subject CN (workload certs have none by default).
func WithCommonName(cn string) Option {
	return func(c *issueConfig) { c.commonName = &cn }
}

// KeyPair is an issued leaf certificate and its private key.
//
// CertPEM holds the leaf certificate only, not the issuing CA: every CA here
// is a self-signed root distributed separately (CA.CertPEM, /etc/meshtls/ca),
// so there is no intermediate to chain and peers verify the leaf directly
// against the root they trust.
type KeyPair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte // PKCS#8 "PRIVATE KEY"; never print it
}

// TLSCertificate returns the pair as a tls.Certificate (leaf only, Leaf set).
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	if kp == nil {
		return tls.Certificate{}, errors.New("certs: TLSCertificate on nil KeyPair")
	}
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: key pair for %s: %w", kp.describe(), err)
	}
	return c, nil
}

func (kp KeyPair) describe() string {
	if kp.Cert == nil {
		return "<empty>"
	}
	c := kp.Cert
	var sans []string
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	sans = append(sans, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	return fmt.Sprintf("subject=%q issuer=%q sans=[%s] serial=%s notAfter=%s",
		c.Subject.CommonName, c.Issuer.CommonName, strings.Join(sans, " "), Serial(c),
		c.NotAfter.UTC().Format(time.RFC3339))
}

// String describes the certificate; the key is never included. String,
// GoString and Format have value receivers so a copied KeyPair value is as
// safe to print as a pointer (fmt prints "<nil>" for a nil pointer).
func (kp KeyPair) String() string {
	return "KeyPair(" + kp.describe() + ")"
}

// GoString keeps %#v from dumping KeyPEM.
func (kp KeyPair) GoString() string { return kp.String() }

// Format keeps every fmt verb from printing KeyPEM, including %+v and %#v.
func (kp KeyPair) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(kp.String())) }

// IssueWorkload issues a workload identity: URI SAN
// spiffe://cluster.local/ns/NS/sa/SA, no subject CN, usable as both server
// and client, like Istio's CA: istio/istio
// security/pkg/pki/util/generate_cert.go genCertTemplateFromCSR gives every
// non-CA leaf ExtKeyUsage server+client auth, and the agent's CSR carries the
// identity only as a SAN (no CN unless IsDualUse).
func (ca *CA) IssueWorkload(ns, sa string, opts ...Option) (*KeyPair, error) {
	if ns == "" || sa == "" {
		return nil, fmt.Errorf("certs: IssueWorkload: namespace %q and service account %q must both be non-empty", ns, sa)
	}
	id, err := url.Parse(SPIFFEID(ns, sa))
	if err != nil {
		return nil, fmt.Errorf("certs: SPIFFE ID for ns=%q sa=%q: %w", ns, sa, err)
	}
	tmpl := &x509.Certificate{
		URIs:        []*url.URL{id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, opts)
}

// IssueServer issues a server certificate for dnsNames; CN is the first name.
func (ca *CA) IssueServer(dnsNames []string, opts ...Option) (*KeyPair, error) {
	if len(dnsNames) == 0 || dnsNames[0] == "" {
		return nil, errors.New("certs: IssueServer: give at least one non-empty DNS name")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		DNSNames:    append([]string(nil), dnsNames...),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return ca.issue(tmpl, opts)
}

// IssueClient issues a client certificate with subject CN cn.
func (ca *CA) IssueClient(cn string, opts ...Option) (*KeyPair, error) {
	if cn == "" {
		return nil, errors.New("certs: IssueClient: empty common name")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, opts)
}

func (ca *CA) issue(tmpl *x509.Certificate, opts []Option) (*KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("certs: issuing on a nil or incomplete CA; create it with NewCA")
	}
	now := time.Now()
	cfg := issueConfig{notBefore: now.Add(-backdate), notAfter: now.Add(leafValidity)}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.notAfter.After(cfg.notBefore) {
		return nil, fmt.Errorf("certs: validity notAfter %s is not after notBefore %s", cfg.notAfter, cfg.notBefore)
	}
	if cfg.serial == nil {
		s, err := randomSerial()
		if err != nil {
			return nil, err
		}
		cfg.serial = s
	} else if cfg.serial.Sign() <= 0 {
		return nil, fmt.Errorf("certs: serial %s must be positive (RFC 5280 4.1.2.2)", cfg.serial)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = cfg.serial
	tmpl.NotBefore, tmpl.NotAfter = cfg.notBefore, cfg.notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	tmpl.Subject.Organization = []string{"meshtls"}
	tmpl.DNSNames = append(tmpl.DNSNames, cfg.dnsNames...)
	tmpl.IPAddresses = append(tmpl.IPAddresses, cfg.ips...)
	tmpl.URIs = append(tmpl.URIs, cfg.uris...)
	if cfg.commonName != nil {
		tmpl.Subject.CommonName = *cfg.commonName
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign leaf with CA %q: %w", ca.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse leaf from CA %q: %w", ca.Name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal leaf key: %w", err)
	}
	return &KeyPair{
		Cert:    cert,
		CertPEM: certPEM(der),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Set is the harness's six CAs.
type Set struct {
	Mesh, Ingress, App, Client, Untrusted, Public *CA
}

// NewSet creates the six CAs with fresh keys.
func NewSet() (*Set, error) {
	s := &Set{}
	for _, n := range Names() {
		ca, err := NewCA(n)
		if err != nil {
			return nil, err
		}
		*s.slot(n) = ca
	}
	return s, nil
}

func (s *Set) slot(name string) **CA {
	switch name {
	case MeshCA:
		return &s.Mesh
	case IngressCA:
		return &s.Ingress
	case AppCA:
		return &s.App
	case ClientCA:
		return &s.Client
	case UntrustedCA:
		return &s.Untrusted
	case PublicCA:
		return &s.Public
	}
	return nil
}

// ByName returns the CA called name.
func (s *Set) ByName(name string) (*CA, error) {
	p := s.slot(name)
	if p == nil {
		return nil, fmt.Errorf("certs: unknown CA %q; valid names: %s", name, strings.Join(Names(), ", "))
	}
	if *p == nil {
		return nil, fmt.Errorf("certs: CA %q is not set; build the set with NewSet", name)
	}
	return *p, nil
}

// Names returns the CA names in a fixed order (same as the package Names).
func (s *Set) Names() []string { return Names() }

// All returns the CAs in Names order.
func (s *Set) All() []*CA {
	return []*CA{s.Mesh, s.Ingress, s.App, s.Client, s.Untrusted, s.Public}
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate P-256 key: %w", err)
	}
	return k, nil
}

// randomSerial returns a random positive serial of at most 128 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		s, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("certs: random serial: %w", err)
		}
		if s.Sign() > 0 {
			return s, nil
		}
	}
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
