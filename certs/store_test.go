package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStoreWorkload(t *testing.T) {
	s := testSet(t)
	st := NewStore(s)
	if st.Set() != s {
		t.Fatal("Set() is not the set given to NewStore")
	}
	first, err := st.Workload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Workload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("Workload returned a new pair (serial %s -> %s), want the cached one", Serial(first.Cert), Serial(again.Cert))
	}
	other, err := st.Workload("default", "b")
	if err != nil {
		t.Fatal(err)
	}
	if other == first || other.Cert.URIs[0].String() != SPIFFEID("default", "b") {
		t.Errorf("default/b got %v", other)
	}
	if err := verify(first.Cert, s.Mesh, x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
		t.Errorf("store workload does not verify against mesh: %v", err)
	}

	rotated, err := st.RotateWorkload("default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if Serial(rotated.Cert) == Serial(first.Cert) {
		t.Error("rotation kept the serial")
	}
	if string(rotated.KeyPEM) == string(first.KeyPEM) || rotated.Cert.PublicKey.(*ecdsa.PublicKey).Equal(first.Cert.PublicKey) {
		t.Error("rotation kept the key")
	}
	if rotated.Cert.URIs[0].String() != first.Cert.URIs[0].String() {
		t.Errorf("rotation changed identity to %v", rotated.Cert.URIs)
	}
	if cur, _ := st.Workload("default", "a"); cur != rotated {
		t.Error("Workload after RotateWorkload does not return the rotated pair")
	}

	expired, err := s.Mesh.IssueWorkload("default", "a", WithValidity(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	st.SetWorkload("default", "a", expired)
	if cur, _ := st.Workload("default", "a"); cur != expired {
		t.Error("Workload after SetWorkload does not return the injected pair")
	}
	st.SetWorkload("default", "a", nil)
	if cur, _ := st.Workload("default", "a"); cur == expired || cur == rotated {
		t.Error("SetWorkload(nil) did not forget the cached pair")
	}
}

func TestStoreServersAndClients(t *testing.T) {
	s := testSet(t)
	st := NewStore(s)
	tests := []struct {
		name   string
		get    func() (*KeyPair, error)
		issuer *CA
		usage  x509.ExtKeyUsage
		cn     string
	}{
		{"ingress server", func() (*KeyPair, error) { return st.Server("gw-cred", []string{"a.example.com"}) }, s.Ingress, x509.ExtKeyUsageServerAuth, "a.example.com"},
		{"app server", func() (*KeyPair, error) {
			return st.AppServer("b", []string{"b.example.com", "b.default.svc.cluster.local"})
		}, s.App, x509.ExtKeyUsageServerAuth, "b.example.com"},
		{"public server", func() (*KeyPair, error) { return st.PublicServer("cnn", []string{"edition.cnn.com"}) }, s.Public, x509.ExtKeyUsageServerAuth, "edition.cnn.com"},
		{"client", func() (*KeyPair, error) { return st.Client("client") }, s.Client, x509.ExtKeyUsageClientAuth, ClientCommonName},
		{"untrusted client", func() (*KeyPair, error) { return st.Client("untrusted") }, s.Untrusted, x509.ExtKeyUsageClientAuth, ClientCommonName},
		{"client with chosen SAN from mesh", func() (*KeyPair, error) {
			return st.ClientWithSAN("mesh", "spiffe://cluster.local/ns/default/sa/x", "x.example.com")
		}, s.Mesh, x509.ExtKeyUsageClientAuth, ClientCommonName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.get()
			if err != nil {
				t.Fatal(err)
			}
			b, err := tc.get()
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Error("second call returned a new pair, want the cached one")
			}
			if err := verify(a.Cert, tc.issuer, tc.usage, time.Now()); err != nil {
				t.Errorf("does not verify against %q: %v", tc.issuer.Name, err)
			}
			if a.Cert.Subject.CommonName != tc.cn {
				t.Errorf("CN = %q, want %q", a.Cert.Subject.CommonName, tc.cn)
			}
		})
	}

	kp, _ := st.ClientWithSAN("mesh", "spiffe://cluster.local/ns/default/sa/x", "x.example.com")
	if len(kp.Cert.URIs) != 1 || kp.Cert.URIs[0].String() != "spiffe://cluster.local/ns/default/sa/x" || !slices.Equal(kp.Cert.DNSNames, []string{"x.example.com"}) {
		t.Errorf("chosen SANs: URIs %v DNS %v", kp.Cert.URIs, kp.Cert.DNSNames)
	}
	if other, _ := st.ClientWithSAN("mesh", "", "x.example.com"); other == kp {
		t.Error("another SAN returned the cached pair")
	}

	// Same name for ingress and app are separate caches.
	gw, _ := st.Server("x", []string{"x.example.com"})
	app, _ := st.AppServer("x", []string{"x.example.com"})
	if gw == app || gw.Cert.Issuer.CommonName == app.Cert.Issuer.CommonName {
		t.Error("Server and AppServer share a cache entry")
	}
	if pub, _ := st.PublicServer("x", []string{"x.example.com"}); pub == app || pub.Cert.Issuer.CommonName == app.Cert.Issuer.CommonName {
		t.Error("AppServer and PublicServer share a cache entry")
	}

	errTests := []struct {
		name string
		call func() error
		want string
	}{
		{"server name reused for other hosts", func() error { _, err := st.Server("gw-cred", []string{"other.example.com"}); return err }, "distinct name"},
		{"server without name", func() error { _, err := st.Server("", []string{"a.example.com"}); return err }, "non-empty name"},
		{"client from mesh CA", func() error { _, err := st.Client("mesh"); return err }, `"client" and "untrusted"`},
		{"store without set", func() error { _, err := NewStore(nil).Workload("default", "a"); return err }, "NewSet"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestStoreConcurrent(t *testing.T) {
	st := NewStore(testSet(t))
	const n = 16
	got := make([]*KeyPair, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			kp, err := st.Workload("default", "a")
			if err != nil {
				t.Error(err)
			}
			got[i] = kp
			_, _ = st.Client("client")
			_, _ = st.Server("gw", []string{"gw.example.com"})
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("goroutine %d got a different pair", i)
		}
	}
}
