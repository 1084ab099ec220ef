package translate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/mesh"
)

// needKind says how to make a kubernetes://<credentialName> secret that the
// bundle does not provide (docs/bundles.md, "A credentialName with no matching v1
// Secret in the bundle gets one issued").
type needKind int

const (
	needNone             needKind = iota // default / ROOTCA
	needGatewayServer                    // Gateway server credential: ingress-CA server cert, client CA as ca.crt
	needClientCredential                 // DestinationRule credential: client cert, app CA as ca.crt
)

type secretNeed struct {
	kind       needKind
	credential string
	hosts      []string // server hosts (needGatewayServer)
}

// needSecret records an SDS name the config references; buildSecrets makes
// exactly those, so the snapshot holds every secret it needs and no other.
func (b *builder) needSecret(name string, n secretNeed) {
	old, ok := b.secrets[name]
	if !ok {
		b.secrets[name] = n
		return
	}
	for _, h := range n.hosts {
		if !slices.Contains(old.hosts, h) {
			old.hosts = append(old.hosts, h)
		}
	}
	if old.kind == needNone {
		old.kind, old.credential = n.kind, n.credential
	}
	b.secrets[name] = old
}

// buildSecrets turns the recorded needs into Secrets (SDS names as Istio's
// node agent serves them: security/pkg/nodeagent/sds/sdsservice.go,
// "default" and "ROOTCA"; credentials as pilot/pkg/xds/sds.go serves
// kubernetes:// resources).
func (b *builder) buildSecrets() {
	if b.env.Certs == nil {
		return
	}
	for _, name := range sortedKeys(b.secrets) {
		need := b.secrets[name]
		s, err := b.secret(name, need)
		if err != nil {
			b.fail(err)
			continue
		}
		b.secretList = append(b.secretList, s)
	}
}

func (b *builder) secret(name string, need secretNeed) (*tlsv3.Secret, error) {
	store := b.env.Certs
	switch name {
	case SecretDefault:
		kp, err := store.Workload(b.proxy.Namespace, b.proxy.ServiceAccount)
		if err != nil {
			return nil, fmt.Errorf("workload certificate of %s: %w", b.proxy.ID(), err)
		}
		return tlsCertSecret(name, kp.CertPEM, kp.KeyPEM), nil
	case SecretRootCA:
		return caSecret(name, store.Set().Mesh.CertPEM), nil
	}
	cred, isCA, ok := credentialFromSecretName(name)
	if !ok {
		return nil, fmt.Errorf("secret %q: unknown SDS name (meshtls bug)", name)
	}
	// A bundle Secret in the proxy's namespace wins (Istio reads credentials
	// from the gateway's namespace: pilot/pkg/credentials/kube/secrets.go).
	if ks := b.bundleSecret(cred); ks != nil {
		return secretFromBundle(name, ks, b.bundleSecret(cred+CACertSuffix), isCA)
	}
	switch need.kind {
	case needGatewayServer:
		if isCA {
			// MUTUAL gateways verify clients against the client CA.
			return caSecret(name, store.Set().Client.CertPEM), nil
		}
		kp, err := store.Server(cred, serverDNSNames(need.hosts))
		if err != nil {
			return nil, fmt.Errorf("gateway credential %q: %w", cred, err)
		}
		return tlsCertSecret(name, kp.CertPEM, kp.KeyPEM), nil
	case needClientCredential:
		if isCA {
			// Origination trusts the app CA (apps terminating TLS themselves).
			return caSecret(name, store.Set().App.CertPEM), nil
		}
		kp, err := store.Client(certs.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client credential %q: %w", cred, err)
		}
		return tlsCertSecret(name, kp.CertPEM, kp.KeyPEM), nil
	}
	return nil, fmt.Errorf("secret %q: no bundle Secret %s/%s and nothing to issue it from (meshtls bug)", name, b.proxy.Namespace, cred)
}

func (b *builder) bundleSecret(name string) *corev1.Secret {
	for _, s := range b.m.Secrets {
		if s.Name == name && s.Namespace == b.proxy.Namespace {
			return s
		}
	}
	return nil
}

func secretData(s *corev1.Secret, key string) []byte {
	if v, ok := s.Data[key]; ok {
		return v
	}
	if v, ok := s.StringData[key]; ok {
		return []byte(v)
	}
	return nil
}

// secretFromBundle reads tls.crt/tls.key, and ca.crt (or a separate
// <name>-cacert Secret with ca.crt / cacert), as Istio's secret controller
// does (pilot/pkg/credentials/kube/secrets.go, extractKeyAndCert / extractRoot).
func secretFromBundle(name string, ks, caSecretObj *corev1.Secret, isCA bool) (*tlsv3.Secret, error) {
	ref := fmt.Sprintf("Secret %s/%s", ks.Namespace, ks.Name)
	if isCA {
		for _, src := range []*corev1.Secret{ks, caSecretObj} {
			if src == nil {
				continue
			}
			for _, key := range []string{"ca.crt", "cacert"} {
				if v := secretData(src, key); len(v) > 0 {
					return caSecret(name, v), nil
				}
			}
		}
		return nil, fmt.Errorf("%s: no ca.crt; a MUTUAL TLS setting using this credentialName needs the CA certificate under data.ca.crt (or a Secret %s-cacert)", ref, ks.Name)
	}
	crt, key := secretData(ks, "tls.crt"), secretData(ks, "tls.key")
	if len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("%s: needs data.tls.crt and data.tls.key (type kubernetes.io/tls)", ref)
	}
	return tlsCertSecret(name, crt, key), nil
}

// serverDNSNames are the Gateway server hosts as certificate DNS names:
// "ns/host" loses its namespace, "*" alone is no name.
func serverDNSNames(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if i := strings.Index(h, "/"); i >= 0 {
			h = h[i+1:]
		}
		if h == "" || h == "*" || slices.Contains(out, h) {
			continue
		}
		out = append(out, h)
	}
	slices.Sort(out)
	if len(out) == 0 {
		out = []string{"localhost"}
	}
	return out
}

func tlsCertSecret(name string, certPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: certPEM}},
		PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}}
}

func caSecret(name string, caPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: caPEM}},
	}}}
}

// Istio's SDS resource names for files (pkg/security/security.go,
// SdsCertificateConfig): file-root:PATH, file-cert:CERT~KEY, and
// file-root:system for the OS trust store.
const (
	fileRootPrefix = "file-root:"
	fileCertPrefix = "file-cert:"
	fileRootSystem = "file-root:system"
)

// IstioSecrets makes the secrets named, SDS resource names as istiod's
// config asks for them, for the proxy of w, from the run's certificates:
// what pilot-agent's SDS server answers (security/pkg/nodeagent/cache/secretcache.go):
// "default" (the workload certificate of w's service account), "ROOTCA"
// (the mesh root), file-root:PATH and file-cert:CERT~KEY (the files, read
// by Envoy in the pod as pilot-agent reads them there; file-root:system is
// the OS trust store), and what istiod serves for a credentialName
// (kubernetes://NAME, kubernetes://NAME-cacert), made as meshtls's own
// translation of w makes them. An unknown name is an error.
func IstioSecrets(m *mesh.Mesh, w *mesh.Workload, env *Env, names []string) ([]*tlsv3.Secret, error) {
	if env == nil || env.Certs == nil {
		return nil, errors.New("translate.IstioSecrets: env.Certs is required")
	}
	b := &builder{m: m, proxy: w, env: env}
	var own map[string]*tlsv3.Secret // meshtls's translation's, for credentials
	var out []*tlsv3.Secret
	for _, name := range names {
		switch {
		case name == SecretDefault || name == SecretRootCA:
			s, err := b.secret(name, secretNeed{})
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case name == fileRootSystem:
			out = append(out, fileCASecret(name, systemRoots))
		case strings.HasPrefix(name, fileRootPrefix):
			out = append(out, fileCASecret(name, strings.TrimPrefix(name, fileRootPrefix)))
		case strings.HasPrefix(name, fileCertPrefix):
			cert, key, ok := strings.Cut(strings.TrimPrefix(name, fileCertPrefix), "~")
			if !ok || cert == "" || key == "" {
				return nil, fmt.Errorf("secret %q: want file-cert:CERT~KEY", name)
			}
			out = append(out, &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: cert}},
				PrivateKey:       &core.DataSource{Specifier: &core.DataSource_Filename{Filename: key}},
			}}})
		case strings.HasPrefix(name, KubernetesSecretPrefix):
			if own == nil {
				res, err := Translate(m, w, env)
				if err != nil {
					return nil, fmt.Errorf("secret %q: %w", name, err)
				}
				own = map[string]*tlsv3.Secret{}
				for _, s := range res.Secrets {
					own[s.GetName()] = s
				}
			}
			s, ok := own[name]
			if !ok {
				return nil, fmt.Errorf("secret %q: meshtls's translation of %s uses no such credential, so it cannot tell what to issue (give the bundle a v1 Secret %s/%s)", name, w.ID(), w.Namespace, strings.TrimSuffix(strings.TrimPrefix(name, KubernetesSecretPrefix), CACertSuffix))
			}
			out = append(out, s)
		default:
			return nil, fmt.Errorf("secret %q: not a name Istio's SDS serves (default, ROOTCA, file-root:, file-cert:, kubernetes://)", name)
		}
	}
	return out, nil
}

func fileCASecret(name, path string) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: path}},
	}}}
}
