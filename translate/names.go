package translate

import (
	"fmt"
	"strings"
)

// Names of Envoy resources, spelled as Istio spells them so that config dumps
// and access logs read like a real mesh's.

const (
	// VirtualOutboundListener catches all outbound traffic redirected to 15001
	// (pilot/pkg/networking/core/listener_builder.go, VirtualOutboundListenerName).
	VirtualOutboundListener = "virtualOutbound"
	// VirtualInboundListener catches all inbound traffic redirected to 15006
	// (pilot/pkg/networking/core/listener_builder.go, VirtualInboundListenerName).
	VirtualInboundListener = "virtualInbound"

	// OutboundCapturePort and InboundCapturePort are Istio's default
	// proxy_config ProxyOutboundPort / ProxyInboundPort.
	OutboundCapturePort = 15001
	InboundCapturePort  = 15006

	// PassthroughCluster forwards to the original destination (ALLOW_ANY),
	// BlackHoleCluster drops; InboundPassthroughCluster forwards inbound
	// traffic for ports that no Service declares (pilot/pkg/util/protoconv,
	// pilot/pkg/networking/util/util.go constants), connecting from
	// InboundPassthroughBindAddress (listener_address.go).
	PassthroughCluster            = "PassthroughCluster"
	BlackHoleCluster              = "BlackHoleCluster"
	InboundPassthroughCluster     = "InboundPassthroughCluster"
	InboundPassthroughBindAddress = "127.0.0.6"

	// SDS secret names (security/pkg/nodeagent/cache, pkg/security/security.go:
	// WorkloadKeyCertResourceName, RootCertReqResourceName; credentialName
	// prefix from pilot/pkg/model/credentials).
	SecretDefault = "default"
	SecretRootCA  = "ROOTCA"
	// KubernetesSecretPrefix precedes a credentialName.
	KubernetesSecretPrefix = "kubernetes://"
	// CACertSuffix names the CA half of a credential (Istio's SdsCaSuffix).
	CACertSuffix = "-cacert"

	// TLSModeMetadataKey is the transport socket match key Istio puts on
	// endpoints that have a sidecar (pkg/model/proxy.go TLSModeLabelShortname,
	// label security.istio.io/tlsMode).
	TLSModeMetadataKey     = "tlsMode"
	TLSModeIstio           = "istio"
	TransportSocketMatchNS = "envoy.transport_socket_match"
)

// OutboundClusterName is outbound|<port>|<subset>|<fqdn>
// (pilot/pkg/model/service.go BuildSubsetKey).
func OutboundClusterName(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// InboundClusterName is inbound|<port>|| (pilot/pkg/model/service.go
// BuildInboundSubsetKey).
func InboundClusterName(port uint32) string {
	return fmt.Sprintf("inbound|%d||", port)
}

// IstioSNI is the SNI a client sidecar sends with ISTIO_MUTUAL:
// outbound_.<port>_.<subset>_.<fqdn> (pilot/pkg/model/service.go BuildDNSSrvSubsetKey).
func IstioSNI(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound_.%d_.%s_.%s", port, subset, host)
}

// OutboundListenerName is 0.0.0.0_<port>, the per-port listener the
// virtualOutbound listener hands connections to.
func OutboundListenerName(port uint32) string { return fmt.Sprintf("0.0.0.0_%d", port) }

// OutboundRouteName is the RDS name of an outbound HTTP port: the port number
// (pilot/pkg/networking/core/httproute.go).
func OutboundRouteName(port uint32) string { return fmt.Sprint(port) }

// CredentialSecretName is kubernetes://<credentialName>; CredentialCASecretName
// adds -cacert (pilot/pkg/model/credentials/resource.go).
func CredentialSecretName(credentialName string) string {
	return KubernetesSecretPrefix + credentialName
}

func CredentialCASecretName(credentialName string) string {
	return KubernetesSecretPrefix + credentialName + CACertSuffix
}

// credentialFromSecretName undoes CredentialSecretName; ok is false for other names.
func credentialFromSecretName(name string) (cred string, isCA bool, ok bool) {
	if !strings.HasPrefix(name, KubernetesSecretPrefix) {
		return "", false, false
	}
	cred = strings.TrimPrefix(name, KubernetesSecretPrefix)
	if c, found := strings.CutSuffix(cred, CACertSuffix); found {
		return c, true, true
	}
	return cred, false, true
}
