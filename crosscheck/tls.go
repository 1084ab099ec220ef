package crosscheck

import (
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// What a TLS context decides, as one comparable string. Names that stand
// for the same material are written alike: Istio's SDS name
// file-root:PATH and a file PATH both read file:PATH.

// upstreamTLS describes a client-side (cluster) TLS context; alpn, when
// not nil, replaces the context's ALPN (a per-request override).
func upstreamTLS(u *tlsv3.UpstreamTlsContext, alpn []string) string {
	c := u.GetCommonTlsContext()
	if alpn == nil {
		alpn = c.GetAlpnProtocols()
	}
	parts := []string{"tls", "sni=" + orNone(u.GetSni())}
	parts = append(parts, "alpn="+list(alpn))
	parts = append(parts, commonTLS(c)...)
	return strings.Join(parts, " ")
}

// downstreamTLS describes a server-side (listener) TLS context.
func downstreamTLS(d *tlsv3.DownstreamTlsContext) string {
	c := d.GetCommonTlsContext()
	kind := "tls"
	if d.GetRequireClientCertificate().GetValue() {
		kind = "mtls"
	}
	parts := []string{kind, "alpn=" + list(c.GetAlpnProtocols())}
	parts = append(parts, commonTLS(c)...)
	return strings.Join(parts, " ")
}

func commonTLS(c *tlsv3.CommonTlsContext) []string {
	var out []string
	var certs []string
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		certs = append(certs, secretName(s.GetName()))
	}
	for _, t := range c.GetTlsCertificates() {
		certs = append(certs, dataSource(t.GetCertificateChain()))
	}
	out = append(out, "cert="+list(certs))

	var ca string
	var vc *tlsv3.CertificateValidationContext
	switch v := c.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = v.ValidationContext
		ca = dataSource(vc.GetTrustedCa())
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		ca = secretName(v.ValidationContextSdsSecretConfig.GetName())
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		vc = v.CombinedValidationContext.GetDefaultValidationContext()
		ca = secretName(v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName())
		if t := dataSource(vc.GetTrustedCa()); t != "none" {
			ca += "+" + t
		}
	default:
		ca = "none"
	}
	out = append(out, "ca="+ca)
	var sans []string
	for _, m := range vc.GetMatchTypedSubjectAltNames() {
		sans = append(sans, strings.ToLower(strings.TrimPrefix(m.GetSanType().String(), "SAN_TYPE_"))+":"+stringMatch(m.GetMatcher()))
	}
	// Istio writes the older untyped matchers (any SAN type); a SPIFFE ID
	// can only be a URI SAN, so those read as URI matchers.
	//lint:ignore SA1019 istiod writes the deprecated untyped matchers; we read what it sends
	for _, m := range vc.GetMatchSubjectAltNames() {
		v := stringMatch(m)
		if strings.HasPrefix(v, "spiffe://") {
			sans = append(sans, "uri:"+v)
		} else {
			sans = append(sans, "any:"+v)
		}
	}
	slices.Sort(sans)
	out = append(out, "san="+list(sans))

	p := c.GetTlsParams()
	out = append(out, "versions="+tlsVersion(p.GetTlsMinimumProtocolVersion())+"-"+tlsVersion(p.GetTlsMaximumProtocolVersion()))
	ciphers := "default"
	if len(p.GetCipherSuites()) > 0 {
		ciphers = list(p.GetCipherSuites())
	}
	out = append(out, "ciphers="+ciphers)
	return out
}

// secretName normalises an SDS secret name.
func secretName(n string) string {
	if p, ok := strings.CutPrefix(n, "file-root:"); ok {
		return dataSource(&core.DataSource{Specifier: &core.DataSource_Filename{Filename: p}})
	}
	if p, ok := strings.CutPrefix(n, "file-cert:"); ok {
		return "file:" + strings.SplitN(p, "~", 2)[0]
	}
	return "sds:" + n
}

func dataSource(d *core.DataSource) string {
	switch {
	case d == nil:
		return "none"
	case d.GetFilename() == "system" || d.GetFilename() == "/etc/ssl/certs/ca-certificates.crt":
		// Istio's node agent reads "system" as the OS trust store, which
		// meshtls names by its Debian path.
		return "system-roots"
	case d.GetFilename() != "":
		return "file:" + d.GetFilename()
	case d.GetInlineString() != "" || len(d.GetInlineBytes()) > 0:
		return "inline"
	case d.GetEnvironmentVariable() != "":
		return "env:" + d.GetEnvironmentVariable()
	}
	return "none"
}

func stringMatch(m *matcher.StringMatcher) string {
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return p.Exact
	case *matcher.StringMatcher_Prefix:
		return p.Prefix + "*"
	case *matcher.StringMatcher_Suffix:
		return "*" + p.Suffix
	case *matcher.StringMatcher_SafeRegex:
		return "re(" + p.SafeRegex.GetRegex() + ")"
	case *matcher.StringMatcher_Contains:
		return "*" + p.Contains + "*"
	}
	return fmt.Sprint(m)
}

func tlsVersion(v tlsv3.TlsParameters_TlsProtocol) string {
	switch v {
	case tlsv3.TlsParameters_TLS_AUTO:
		return "auto"
	case tlsv3.TlsParameters_TLSv1_0:
		return "1.0"
	case tlsv3.TlsParameters_TLSv1_1:
		return "1.1"
	case tlsv3.TlsParameters_TLSv1_2:
		return "1.2"
	case tlsv3.TlsParameters_TLSv1_3:
		return "1.3"
	}
	return v.String()
}

func list(s []string) string { return "[" + strings.Join(s, ",") + "]" }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
