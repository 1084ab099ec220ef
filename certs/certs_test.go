package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSet is shared: CA generation is cheap but there is no reason to repeat it.
var (
	setOnce sync.Once
	set     *Set
	setErr  error
)

func testSet(t *testing.T) *Set {
	t.Helper()
	setOnce.Do(func() { set, setErr = NewSet() })
	if setErr != nil {
		t.Fatalf("NewSet: %v", setErr)
	}
	return set
}

func verify(leaf *x509.Certificate, root *CA, usage x509.ExtKeyUsage, at time.Time) error {
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       root.Pool(),
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{usage},
	})
	return err
}

func TestSetCAs(t *testing.T) {
	s := testSet(t)
	if got, want := s.Names(), []string{"mesh", "ingress", "app", "client", "untrusted", "public"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for _, name := range s.Names() {
		ca, err := s.ByName(name)
		if err != nil {
			t.Fatalf("ByName(%q): %v", name, err)
		}
		if ca.Name != name {
			t.Errorf("ByName(%q).Name = %q", name, ca.Name)
		}
		if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("CA %q: IsCA=%v KeyUsage=%v, want a signing CA", name, ca.Cert.IsCA, ca.Cert.KeyUsage)
		}
		pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("CA %q: public key %T, want ECDSA P-256", name, ca.Cert.PublicKey)
		}
		parsed, err := ParseCertPEM(ca.CertPEM)
		if err != nil || !parsed.Equal(ca.Cert) {
			t.Errorf("CA %q: CertPEM does not parse back to Cert (err %v)", name, err)
		}
		if seen[string(ca.Cert.SubjectKeyId)] {
			t.Errorf("CA %q shares a key with another CA", name)
		}
		seen[string(ca.Cert.SubjectKeyId)] = true
	}
	_, err := s.ByName("rogue")
	if err == nil || !strings.Contains(err.Error(), "mesh, ingress, app, client, untrusted") {
		t.Errorf("ByName(rogue) error = %v, want one listing the valid names", err)
	}
}

func TestIssue(t *testing.T) {
	s := testSet(t)
	tests := []struct {
		name   string
		ca     *CA
		wrong  *CA // a CA that must not verify the leaf
		issue  func(*CA) (*KeyPair, error)
		usages []x509.ExtKeyUsage
		cn     string
		dns    []string
		uris   []string
	}{
		{
			name:   "mesh workload",
			ca:     s.Mesh,
			wrong:  s.Untrusted,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueWorkload("default", "a") },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			uris:   []string{"spiffe://cluster.local/ns/default/sa/a"},
		},
		{
			name:   "untrusted workload",
			ca:     s.Untrusted,
			wrong:  s.Mesh,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueWorkload("default", "a") },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			uris:   []string{"spiffe://cluster.local/ns/default/sa/a"},
		},
		{
			name:   "ingress server",
			ca:     s.Ingress,
			wrong:  s.App,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueServer([]string{"a.example.com", "*.example.org"}) },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			cn:     "a.example.com",
			dns:    []string{"a.example.com", "*.example.org"},
		},
		{
			name:   "app server",
			ca:     s.App,
			wrong:  s.Ingress,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueServer([]string{"b.default.svc.cluster.local"}) },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			cn:     "b.default.svc.cluster.local",
			dns:    []string{"b.default.svc.cluster.local"},
		},
		{
			name:   "client",
			ca:     s.Client,
			wrong:  s.Untrusted,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueClient("meshtls-client") },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			cn:     "meshtls-client",
		},
		{
			name:   "untrusted client",
			ca:     s.Untrusted,
			wrong:  s.Client,
			issue:  func(ca *CA) (*KeyPair, error) { return ca.IssueClient("meshtls-client") },
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			cn:     "meshtls-client",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := tc.issue(tc.ca)
			if err != nil {
				t.Fatalf("issue: %v", err)
			}
			c := kp.Cert
			now := time.Now()
			for _, u := range tc.usages {
				if err := verify(c, tc.ca, u, now); err != nil {
					t.Errorf("verify against own CA %q for usage %v: %v", tc.ca.Name, u, err)
				}
			}
			var unknown x509.UnknownAuthorityError
			if err := verify(c, tc.wrong, tc.usages[0], now); !errors.As(err, &unknown) {
				t.Errorf("verify against CA %q: err = %v, want UnknownAuthorityError", tc.wrong.Name, err)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.usages) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tc.usages)
			}
			if c.IsCA {
				t.Error("leaf is a CA")
			}
			if c.Subject.CommonName != tc.cn {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tc.cn)
			}
			if !slices.Equal(c.DNSNames, tc.dns) {
				t.Errorf("DNSNames = %v, want %v", c.DNSNames, tc.dns)
			}
			var uris []string
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			if !slices.Equal(uris, tc.uris) {
				t.Errorf("URIs = %v, want exactly %v", uris, tc.uris)
			}
			if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v: want positive, at most 128 bits", c.SerialNumber)
			}
			parsed, err := ParseCertPEM(kp.CertPEM)
			if err != nil || !parsed.Equal(c) {
				t.Errorf("CertPEM does not parse back to Cert (err %v)", err)
			}
			if n := strings.Count(string(kp.CertPEM), "BEGIN CERTIFICATE"); n != 1 {
				t.Errorf("CertPEM holds %d certificates, want the leaf only", n)
			}
			tc2, err := kp.TLSCertificate()
			if err != nil {
				t.Fatalf("TLSCertificate: %v", err)
			}
			if len(tc2.Certificate) != 1 || !tc2.Leaf.Equal(c) {
				t.Errorf("TLSCertificate: %d certs, leaf equal=%v; want the one leaf", len(tc2.Certificate), tc2.Leaf.Equal(c))
			}
		})
	}
}

func TestSPIFFEID(t *testing.T) {
	tests := []struct{ ns, sa, want string }{
		{"default", "a", "spiffe://cluster.local/ns/default/sa/a"},
		{"istio-system", "istio-ingressgateway-service-account", "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"},
	}
	for _, tc := range tests {
		if got := SPIFFEID(tc.ns, tc.sa); got != tc.want {
			t.Errorf("SPIFFEID(%q, %q) = %q, want %q", tc.ns, tc.sa, got, tc.want)
		}
	}
}

func TestIssueOptionsAndErrors(t *testing.T) {
	s := testSet(t)
	now := time.Now()
	tests := []struct {
		name    string
		issue   func() (*KeyPair, error)
		wantErr string
		check   func(t *testing.T, kp *KeyPair)
	}{
		{
			name: "expired fails at now",
			issue: func() (*KeyPair, error) {
				return s.Mesh.IssueWorkload("default", "a", WithValidity(now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
			},
			check: func(t *testing.T, kp *KeyPair) {
				var inv x509.CertificateInvalidError
				err := verify(kp.Cert, s.Mesh, x509.ExtKeyUsageServerAuth, now)
				if !errors.As(err, &inv) || inv.Reason != x509.Expired {
					t.Errorf("verify at now: %v, want Expired", err)
				}
				if err := verify(kp.Cert, s.Mesh, x509.ExtKeyUsageServerAuth, now.Add(-36*time.Hour)); err != nil {
					t.Errorf("verify inside the validity window: %v", err)
				}
			},
		},
		{
			name: "not yet valid",
			issue: func() (*KeyPair, error) {
				return s.Ingress.IssueServer([]string{"a.example.com"}, WithValidity(now.Add(time.Hour), now.Add(2*time.Hour)))
			},
			check: func(t *testing.T, kp *KeyPair) {
				var inv x509.CertificateInvalidError
				if err := verify(kp.Cert, s.Ingress, x509.ExtKeyUsageServerAuth, now); !errors.As(err, &inv) || inv.Reason != x509.Expired {
					t.Errorf("verify at now: %v, want Expired (Go reports not-yet-valid as Expired)", err)
				}
			},
		},
		{
			name:  "fixed serial with leading zero nibble",
			issue: func() (*KeyPair, error) { return s.Client.IssueClient("x", WithSerial(big.NewInt(0x0a1b))) },
			check: func(t *testing.T, kp *KeyPair) {
				if got := Serial(kp.Cert); got != "0a1b" {
					t.Errorf("Serial = %q, want %q (whole bytes, as Envoy prints)", got, "0a1b")
				}
			},
		},
		{
			name: "extra SANs and CN",
			issue: func() (*KeyPair, error) {
				return s.Mesh.IssueWorkload("default", "a", WithDNSNames("a.default.svc"), WithIPAddresses(net.ParseIP("10.0.0.1")), WithCommonName("a"))
			},
			check: func(t *testing.T, kp *KeyPair) {
				c := kp.Cert
				if c.Subject.CommonName != "a" || !slices.Equal(c.DNSNames, []string{"a.default.svc"}) ||
					len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || len(c.URIs) != 1 {
					t.Errorf("got CN=%q DNS=%v IPs=%v URIs=%v", c.Subject.CommonName, c.DNSNames, c.IPAddresses, c.URIs)
				}
			},
		},
		{name: "empty namespace", issue: func() (*KeyPair, error) { return s.Mesh.IssueWorkload("", "a") }, wantErr: "non-empty"},
		{name: "no DNS names", issue: func() (*KeyPair, error) { return s.Ingress.IssueServer(nil) }, wantErr: "at least one"},
		{name: "empty client CN", issue: func() (*KeyPair, error) { return s.Client.IssueClient("") }, wantErr: "empty common name"},
		{name: "zero serial", issue: func() (*KeyPair, error) { return s.Client.IssueClient("x", WithSerial(big.NewInt(0))) }, wantErr: "positive"},
		{
			name:    "inverted validity",
			issue:   func() (*KeyPair, error) { return s.Client.IssueClient("x", WithValidity(now, now.Add(-time.Hour))) },
			wantErr: "not after",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := tc.issue()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("issue: %v", err)
			}
			tc.check(t, kp)
		})
	}
}

func TestSerialsRandom(t *testing.T) {
	s := testSet(t)
	seen := map[string]bool{}
	for range 20 {
		kp, err := s.Client.IssueClient("x")
		if err != nil {
			t.Fatal(err)
		}
		sn := Serial(kp.Cert)
		if seen[sn] {
			t.Fatalf("serial %s issued twice", sn)
		}
		seen[sn] = true
	}
}

// TestTLSHandshake checks the pairs work in a real handshake (over an
// in-memory pipe) and that Serial matches what the peer sees.
func TestTLSHandshake(t *testing.T) {
	s := testSet(t)
	server, err := s.Mesh.IssueWorkload("default", "b")
	if err != nil {
		t.Fatal(err)
	}
	client, err := s.Mesh.IssueWorkload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		clientRoot *CA
		wantErr    bool
	}{
		{"mesh root trusts mesh server", s.Mesh, false},
		{"untrusted root rejects mesh server", s.Untrusted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := server.TLSCertificate()
			if err != nil {
				t.Fatal(err)
			}
			cc, err := client.TLSCertificate()
			if err != nil {
				t.Fatal(err)
			}
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			srv := tls.Server(a, &tls.Config{
				Certificates: []tls.Certificate{sc},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    s.Mesh.Pool(),
			})
			cli := tls.Client(b, &tls.Config{
				Certificates: []tls.Certificate{cc},
				RootCAs:      tc.clientRoot.Pool(),
				// Workload certs have no DNS SAN: check the SPIFFE URI as Envoy does.
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					leaf := cs.PeerCertificates[0]
					if _, err := leaf.Verify(x509.VerifyOptions{Roots: tc.clientRoot.Pool()}); err != nil {
						return err
					}
					if len(leaf.URIs) != 1 || leaf.URIs[0].String() != SPIFFEID("default", "b") {
						return fmt.Errorf("peer URIs %v", leaf.URIs)
					}
					return nil
				},
			})
			srvErr := make(chan error, 1)
			go func() { srvErr <- srv.Handshake() }()
			err = cli.Handshake()
			if tc.wantErr {
				if err == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-srvErr; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			if got, want := Serial(cli.ConnectionState().PeerCertificates[0]), Serial(server.Cert); got != want {
				t.Errorf("client saw serial %s, want %s", got, want)
			}
			if got, want := Serial(srv.ConnectionState().PeerCertificates[0]), Serial(client.Cert); got != want {
				t.Errorf("server saw serial %s, want %s", got, want)
			}
		})
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	s := testSet(t)
	kp, err := s.Mesh.IssueWorkload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(kp.KeyPEM), "\n")[1] // first base64 line of the key
	type holder struct {
		KP  *KeyPair
		Val KeyPair
		CA  *CA
	}
	values := map[string]any{"pointer": kp, "value": *kp, "nested": holder{kp, *kp, s.Mesh}, "ca": s.Mesh, "ca value": *s.Mesh}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, keyBody) || strings.Contains(out, "D:") {
				t.Errorf("%s printed with %s exposes key material: %s", name, verb, out)
			}
		}
	}
	if got := kp.String(); !strings.Contains(got, Serial(kp.Cert)) || !strings.Contains(got, SPIFFEID("default", "a")) {
		t.Errorf("String() = %q, want serial and identity", got)
	}
	var nilKP *KeyPair
	if got := fmt.Sprint(nilKP); got != "<nil>" {
		t.Errorf("nil KeyPair prints %q", got)
	}
}

func TestParseCertPEM(t *testing.T) {
	s := testSet(t)
	kp, err := s.Client.IssueClient("x")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"cert", kp.CertPEM, false},
		{"key then cert", append(append([]byte{}, kp.KeyPEM...), kp.CertPEM...), false},
		{"key only", kp.KeyPEM, true},
		{"garbage", []byte("not pem"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCertPEM(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil || !c.Equal(kp.Cert) {
				t.Fatalf("got %v, %v", c, err)
			}
		})
	}
}

func TestWriteCAs(t *testing.T) {
	s := testSet(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := WriteCAs(dir, s); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("dir: %v mode %v, want 0755", err, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"app.pem", "client.pem", "ingress.pem", "mesh.pem", "public.pem", "untrusted.pem"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, name := range s.Names() {
		p := filepath.Join(dir, name+".pem")
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v mode %v, want 0644", p, err, fi.Mode().Perm())
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("%s contains a private key", p)
		}
		ca, _ := s.ByName(name)
		if c, err := ParseCertPEM(data); err != nil || !c.Equal(ca.Cert) {
			t.Errorf("%s is not CA %q: %v", p, name, err)
		}
	}
	// Rewriting is fine (atomic replace).
	if err := WriteCAs(dir, s); err != nil {
		t.Fatalf("second WriteCAs: %v", err)
	}
}

func TestWriteKeyPair(t *testing.T) {
	s := testSet(t)
	kp, err := s.Ingress.IssueServer([]string{"a.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		existing os.FileMode // mode of a pre-existing key file; 0 = none
		base     string
		wantErr  string
	}{
		{name: "fresh", base: "gw"},
		{name: "replace private key", existing: 0o600, base: "gw"},
		{name: "refuse world-readable key", existing: 0o644, base: "gw", wantErr: "readable beyond its owner"},
		{name: "refuse group-readable key", existing: 0o640, base: "gw", wantErr: "readable beyond its owner"},
		{name: "base with directory", base: "../gw", wantErr: "plain file name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "creds")
			if tc.existing != 0 {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, tc.base+".key")
				if err := os.WriteFile(p, []byte("old"), tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tc.existing); err != nil { // defeat the umask
					t.Fatal(err)
				}
			}
			err := WriteKeyPair(dir, tc.base, kp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				ext  string
				mode os.FileMode
				data []byte
			}{{".crt", 0o644, kp.CertPEM}, {".key", 0o600, kp.KeyPEM}} {
				p := filepath.Join(dir, tc.base+f.ext)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != f.mode {
					t.Errorf("%s mode %04o, want %04o", p, fi.Mode().Perm(), f.mode)
				}
				if data, _ := os.ReadFile(p); string(data) != string(f.data) {
					t.Errorf("%s content differs", p)
				}
			}
			if _, err := tls.LoadX509KeyPair(filepath.Join(dir, tc.base+".crt"), filepath.Join(dir, tc.base+".key")); err != nil {
				t.Errorf("LoadX509KeyPair on written files: %v", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("dir holds %d entries, want 2 (no leftover temp files)", len(entries))
			}
		})
	}
}

// The OS trust store is the system bundle plus the public CA: a server the
// public CA certified verifies against it, one from the app CA does not
// (SIMPLE origination without a CA trusts only public sites).
func TestWriteOSTrustStore(t *testing.T) {
	s := testSet(t)
	other, err := NewCA("stand-in for a system root")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "os", "ca-certificates.crt")
	system := bytes.TrimSuffix(other.CertPEM, []byte("\n")) // a bundle without its last newline
	if err := WriteOSTrustStore(path, system, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificates in the trust store")
	}
	if n := bytes.Count(b, []byte("-----BEGIN CERTIFICATE-----")); n != 2 {
		t.Errorf("%d certificates, want 2 (the system one and public)", n)
	}
	for _, tc := range []struct {
		ca   *CA
		want bool
	}{{s.Public, true}, {other, true}, {s.App, false}, {s.Ingress, false}} {
		kp, err := tc.ca.IssueServer([]string{"edition.cnn.com"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kp.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "edition.cnn.com"})
		if (err == nil) != tc.want {
			t.Errorf("server from %s: verify error %v, want trusted=%v", tc.ca.Name, err, tc.want)
		}
	}
	if err := WriteOSTrustStore(path, nil, &Set{}); err == nil {
		t.Error("a set without the public CA was accepted")
	}
}
