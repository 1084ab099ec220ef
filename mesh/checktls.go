package mesh

import (
	"crypto/tls"
	"strings"
)

// TLS versions a check's client may offer, by Istio's names (the
// ServerTLSSettings / ClientTLSSettings minProtocolVersion enum of
// istio.io/api networking/v1alpha3/gateway.proto), with Go's numbers.
var checkTLSVersions = map[string]uint16{
	"TLSV1_0": tls.VersionTLS10,
	"TLSV1_1": tls.VersionTLS11,
	"TLSV1_2": tls.VersionTLS12,
	"TLSV1_3": tls.VersionTLS13,
}

// CheckTLSVersion is the Go number of an Istio TLS version name.
func CheckTLSVersion(name string) (uint16, bool) {
	v, ok := checkTLSVersions[name]
	return v, ok
}

// Envoy (BoringSSL) names cipher suites the OpenSSL way, and so do Istio's
// cipherSuites fields; Go uses the IANA names. This maps Envoy's default
// TLS 1.2 list (Envoy docs, extensions.transport_sockets.tls.v3.TlsParameters
// cipher_suites) to IANA names; IANA names are accepted as they are.
var opensslCiphers = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
}

// CipherSuiteName is the IANA name of a TLS 1.2-or-older cipher suite given
// by its OpenSSL or IANA name; false when Go's client cannot offer it (TLS
// 1.3 suites are not configurable in Go, nor in Envoy's cipher_suites).
func CipherSuiteName(name string) (string, bool) {
	if n, ok := opensslCiphers[name]; ok {
		name = n
	}
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, cs := range list {
			if cs.Name == name && !onlyTLS13(cs) {
				return cs.Name, true
			}
		}
	}
	return "", false
}

func onlyTLS13(cs *tls.CipherSuite) bool {
	return len(cs.SupportedVersions) == 1 && cs.SupportedVersions[0] == tls.VersionTLS13
}

// knownCipherNames lists the OpenSSL names for error messages.
func knownCipherNames() string {
	return strings.Join(sortedKeys(opensslCiphers), ", ")
}
