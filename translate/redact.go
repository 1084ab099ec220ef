package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// Redacted replaces private key material in printed config.
const Redacted = "[redacted]"

// RedactSecret blanks the private key of a TLS certificate secret in place,
// so translate output and artifacts never carry keys.
func RedactSecret(m proto.Message) {
	s, ok := m.(*tls.Secret)
	if !ok {
		return
	}
	if c := s.GetTlsCertificate(); c != nil && c.PrivateKey != nil {
		c.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: Redacted}}
	}
}
