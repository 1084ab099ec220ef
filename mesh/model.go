// Package mesh loads meshtls bundles (Istio and Kubernetes YAML plus our own
// Workload and Check kinds), validates them, and answers the questions the
// translator asks. It knows nothing of Envoy or Docker.
package mesh

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	security "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/meshtls/meshtls/outcome"
)

const (
	// RootNamespace holds mesh-wide policy, as Istio's default meshConfig.rootNamespace.
	RootNamespace = "istio-system"
	// TrustDomain is Istio's default trust domain.
	TrustDomain = "cluster.local"
	// DomainSuffix is the cluster DNS suffix for service hostnames.
	DomainSuffix = "svc.cluster.local"
	// OurAPIVersion is the apiVersion of the Workload and Check kinds.
	OurAPIVersion = "meshtls.dev/v1alpha1"
)

// Source says where a document came from, for error messages.
type Source struct {
	File  string // path as given
	Index int    // 0-based document index within the file
	Item  int    // 1-based item of a kind: List document; 0: not in a List
}

func (s Source) String() string {
	if s.Item > 0 {
		return fmt.Sprintf("%s (document %d, item %d)", s.File, s.Index+1, s.Item)
	}
	return fmt.Sprintf("%s (document %d)", s.File, s.Index+1)
}

// Mesh is one loaded bundle. Istio resources of every served version are
// normalised to the v1 client-go types (their specs are the same protos).
type Mesh struct {
	Workloads           []*Workload
	Services            []*Service
	Checks              []*Check
	PeerAuthentications []*security.PeerAuthentication
	DestinationRules    []*networking.DestinationRule
	Gateways            []*networking.Gateway
	VirtualServices     []*networking.VirtualService
	ServiceEntries      []*networking.ServiceEntry
	Sidecars            []*networking.Sidecar
	Secrets             []*corev1.Secret
	// NetworkPolicies are enforced on the pods' traffic (networkpolicy.go).
	NetworkPolicies []*networkingv1.NetworkPolicy

	// Notices say what loading did that the user should know and that does
	// not make the bundle invalid: documents skipped, replicas capped, fields
	// accepted but not translated because they cannot change TLS or
	// reachability (notice.go). validate and run print them.
	Notices []Problem
	// Warnings name config Istio accepts but partly ignores, e.g. a
	// Gateway server that conflicts with an older one; the bundle stays valid.
	Warnings []Problem

	// MeshConfigSource is the mesh config ConfigMap the bundle gave
	// (meshconfig.go); nil: Istio's defaults.
	MeshConfigSource *MeshConfigSource
	meshConfig       *meshconfig.MeshConfig

	// Namespaces holds the labels of v1 Namespace documents, by name.
	Namespaces map[string]map[string]string

	// Sources maps "Kind/namespace/name" to where the document came from.
	Sources map[string]Source

	// docs are the documents read, for WithConfig; nil for a Mesh built in Go.
	docs []document

	index atomic.Pointer[index]
	drs   atomic.Pointer[drCache]
}

// Workload is a pod (app with or without sidecar), a standalone gateway, or
// an external server outside the mesh registry.
type Workload struct {
	Name           string
	Namespace      string
	Labels         map[string]string
	Sidecar        bool // default true; false for a plain pod outside the mesh
	Gateway        bool // a standalone Envoy, no app
	ServiceAccount string
	Hostnames      []string
	External       bool
	// Addresses are IPs outside the run's network this external workload
	// answers at (spec.addresses): an Endpoints address of a selector-less
	// Service, rewritten in every pod to the workload's own address.
	Addresses []netip.Addr
	// AppCA issues the certificate of the app's own TLS ports: "app" (or
	// "") or "public", whose root the pods' OS trust store holds.
	AppCA  string
	Ports  []WorkloadPort
	Source Source
	// Kind is what the workload came from: Workload (ours), Pod, Deployment,
	// StatefulSet, DaemonSet or ReplicaSet.
	Kind string
	// Controller is the name of the Kubernetes object whose pods this is
	// one of (namespace/name); a ref to it resolves to its first pod.
	Controller string
	// Capture is how the pod's traffic reaches its sidecar (Istio's
	// traffic.sidecar.istio.io annotations); the zero value captures all.
	Capture Capture
}

// Capture is the redirection istio-init programs, as changed by the pod
// annotations traffic.sidecar.istio.io/includeInboundPorts,
// excludeInboundPorts, excludeOutboundPorts, includeOutboundIPRanges and
// excludeOutboundIPRanges. The zero value is Istio's default: every inbound
// port and every outbound address is captured.
type Capture struct {
	InboundPorts    []uint32 // capture only these inbound ports (nil: all)
	NoInbound       bool     // includeInboundPorts "": no inbound capture
	ExcludeInbound  []uint32 // applies when every inbound port is captured
	ExcludeOutbound []uint32 // outbound destination ports not captured
	OutboundRanges  []netip.Prefix
	NoOutbound      bool // includeOutboundIPRanges "": no outbound capture
	ExcludeRanges   []netip.Prefix
}

// IsDefault reports whether c captures everything, as Istio does by default.
func (c Capture) IsDefault() bool {
	return c.InboundPorts == nil && !c.NoInbound && len(c.ExcludeInbound) == 0 && len(c.ExcludeOutbound) == 0 &&
		c.OutboundRanges == nil && !c.NoOutbound && len(c.ExcludeRanges) == 0
}

// WorkloadPort is a port the app listens on.
type WorkloadPort struct {
	Name        string
	Port        uint32
	AppProtocol string
	TLS         bool // the app terminates TLS itself (certificate from the app CA)
	// ServerFirst: the app greets each connection before reading anything
	// (MySQL, SMTP), which defeats protocol sniffing under PERMISSIVE.
	ServerFirst bool
}

// ID is "namespace/name".
func (w *Workload) ID() string { return w.Namespace + "/" + w.Name }

// Identity is the workload's SPIFFE ID.
func (w *Workload) Identity() string { return SPIFFE(w.Namespace, w.ServiceAccount) }

// HasProxy reports whether an Envoy runs for this workload (sidecar or gateway).
func (w *Workload) HasProxy() bool { return (w.Sidecar || w.Gateway) && !w.External }

// SPIFFE returns spiffe://cluster.local/ns/NS/sa/SA.
func SPIFFE(ns, sa string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", TrustDomain, ns, sa)
}

// Service is a Kubernetes Service, given in the bundle or implied by a
// Workload (same name, namespace, ports; selector = the workload's labels).
type Service struct {
	Name      string
	Namespace string
	Selector  map[string]string
	Ports     []ServicePort
	Implied   bool
	Source    Source
	// ClusterIP is spec.clusterIP as given: "None" makes the Service
	// headless; any other value is recorded, never dialled (a run's cluster
	// IPs come from its own network, see AddressPlan).
	ClusterIP string
	// Created is metadata.creationTimestamp (zero when not given): Istio
	// orders a proxy's Services by it, then by hostname (GatewayListenPort).
	Created time.Time
	// NoGatewayPortTranslation: the Service carries Istio's label
	// experimental.istio.io/disable-gateway-port-translation (GatewayListenPort).
	NoGatewayPortTranslation bool
	// ExportTo is the annotation networking.istio.io/exportTo split at
	// commas ("." own namespace, "*" all, "~" none, or namespace names);
	// empty: the mesh default, all (VisibleFrom).
	ExportTo []string
	// ExternalName is spec.externalName of a type ExternalName Service:
	// Istio makes it an alias of that host (kube_endpoints.go, Aliases).
	// It has no cluster IP, no endpoints, no listener and no cluster.
	ExternalName string
	// Manual: a Service without selector whose endpoints the bundle's
	// EndpointSlices (or Endpoints) give, as Istio reads them
	// (kube_endpoints.go); ManualEndpoints are they.
	Manual          bool
	ManualEndpoints []ServiceEndpoint
}

// ServiceEndpoint is one address of a selector-less Service's
// EndpointSlice or Endpoints: a pod of the bundle (its targetRef), or an
// address outside the run's network that a Workload with that address in
// spec.addresses answers.
type ServiceEndpoint struct {
	Addr netip.Addr // as written in the bundle (a cluster's pod IP, or a public address)
	// Pod is the bundle workload the targetRef names (its run address is
	// dialled); nil for an address outside the cluster.
	Pod *Workload
	// Answer is the external Workload that stands in for an address
	// outside the cluster (its spec.addresses holds Addr); nil for pods.
	Answer *Workload
	Ports  map[string]uint32 // port name (as the Service port's) -> port
}

// ServicePort is one port of a Service; TargetPort is resolved to a number.
type ServicePort struct {
	Name        string
	Port        uint32
	TargetPort  uint32
	AppProtocol string
}

// VIPKey is where AddressPlan keeps the Service's cluster IP.
func (s *Service) VIPKey() string { return "Service/" + s.Namespace + "/" + s.Name }

// Headless reports a Service given with clusterIP: None: its name resolves
// to the pods it selects and it has no cluster IP.
func (s *Service) Headless() bool { return s.ClusterIP == "None" && s.ExternalName == "" }

// HasClusterIP reports whether the run gives the Service a cluster IP:
// not when headless, nor an ExternalName Service (a DNS alias, no IP).
func (s *Service) HasClusterIP() bool { return s.ClusterIP != "None" && s.ExternalName == "" }

// Hostname is the service FQDN, name.namespace.svc.cluster.local.
func (s *Service) Hostname() string { return s.Name + "." + s.Namespace + "." + DomainSuffix }

// Check is a call from a workload and what must happen.
type Check struct {
	Name      string
	Namespace string
	From      string // workload ref: name, or namespace/name
	To        string // URL: http, https, tcp, tls
	Via       string // optional gateway workload ref to dial instead
	// Resolve: dial the address this name resolves to in the calling pod
	// (a Service name in any form, a hostname), keeping the URL's host,
	// SNI and path, as curl --resolve HOST:PORT:ADDRESS does.
	Resolve string
	// ServerFirst: the client sends nothing and waits for the app's greeting
	// (tcp and tls URLs), as a client of a server-first protocol does.
	ServerFirst bool
	TLS         *CheckTLS
	Expect      *Expect
	Source      Source
	// Explored: generated by Explore, not written in the bundle.
	Explored bool
	// Dest names the destination in the reachability matrix (explored
	// checks): service.namespace:port, or host:port via a gateway.
	Dest string
}

// CheckTLS are client TLS settings for https and tls URLs.
type CheckTLS struct {
	SNI        *string  // nil: the URL host; "": no SNI
	CA         []string // CA names the client trusts; default [ingress, app]
	ClientCert string   // CA that issues the client certificate: "" (none), or one of KnownCAs
	ClientURI  string   // URI SAN of that certificate (default: none)
	ClientDNS  string   // DNS SAN of that certificate (default: none)
	MinVersion string   // lowest TLS version offered, Istio's names TLSV1_0..TLSV1_3 ("": Go's default, TLSV1_2)
	MaxVersion string   // highest TLS version offered ("": TLSV1_3)
	ALPN       []string // ALPN protocols offered (default: http/1.1 for https, none for tls)
	Ciphers    []string // TLS 1.2 and older cipher suites offered (default: Go's); TLS 1.3 suites are not configurable
}

// HasCustomClientCert reports whether the check asks for a client
// certificate other than the fixed ones (CN meshtls-client from client or
// untrusted): a chosen SAN, or another CA.
func (t *CheckTLS) HasCustomClientCert() bool {
	return t != nil && t.ClientCert != "" && (t.ClientURI != "" || t.ClientDNS != "" || !slices.Contains(KnownClientCerts, t.ClientCert))
}

// Expect is what must be observed. Empty fields are not compared.
type Expect struct {
	Result outcome.Result // ok | http-NNN | reset | refused | timeout | tls-error | fail (any outcome but ok); outcome.Result.Expectable
	Wire   []outcome.Wire // per network hop: plaintext, tls, mtls, tls+tls, mtls+tls, none (outcome.Wires)
	Peer   string         // SPIFFE ID verified by the receiver on the last hop, or outcome.PeerNone
	Reason string         // substring of Envoy's failure reason or response flags
	Hops   []HopExpect
	// ServedBy is the workload (namespace/name) whose app answered: the
	// end of the last hop.
	ServedBy string
}

// HopExpect is what the outer TLS layer of one network hop must show, by
// position (the first entry is the first hop). Empty fields are not compared.
type HopExpect struct {
	TLSVersion string   // negotiated version, as Envoy spells it: TLSv1.2, TLSv1.3; "none": no TLS on the hop
	SNI        string   // server name sent; "none": none
	ALPN       []string // protocols offered in the ClientHello, in order
}

// AddressPlan gives every workload a fixed address in prefix, in load order
// (first usable host is .2; .1 is the bridge gateway), and every Service
// that is not headless a cluster IP from the top of the same prefix
// downward, under VIPKey. Cluster IPs thus come from the run's own network
// and never from a range outside it; a clusterIP written in the bundle is
// only recorded. The harness creates its network with this prefix so
// translation can happen before any container starts. A prefix too small
// for both leaves the last Services without cluster IP: CheckAddressPlan
// says so.
func (m *Mesh) AddressPlan(prefix netip.Prefix) map[string]netip.Addr {
	out := make(map[string]netip.Addr, len(m.Workloads)+len(m.Services))
	a := prefix.Masked().Addr().Next().Next()
	for _, w := range m.Workloads {
		out[w.ID()] = a
		a = a.Next()
	}
	last := a.Prev() // the highest workload address
	vip := lastHost(prefix)
	for _, s := range m.Services {
		if !s.HasClusterIP() {
			continue
		}
		if !vip.IsValid() || vip.Compare(last) <= 0 {
			break
		}
		out[s.VIPKey()] = vip
		vip = vip.Prev()
	}
	return out
}

// PlanBits is the prefix length of the smallest network, /24 or wider,
// that holds AddressPlan's addresses: every workload and every Service's
// cluster IP, besides the network address, the bridge gateway (.1) and the
// broadcast address. A run's network is created this size (harness).
func (m *Mesh) PlanBits() int {
	n := len(m.Workloads) + 3
	for _, s := range m.Services {
		if s.HasClusterIP() {
			n++
		}
	}
	bits := 24
	for bits > 0 && 1<<(32-bits) < n {
		bits--
	}
	return bits
}

// CheckAddressPlan reports when prefix cannot hold every workload and
// every Service's cluster IP.
func (m *Mesh) CheckAddressPlan(prefix netip.Prefix) error {
	plan := m.AddressPlan(prefix)
	for _, s := range m.Services {
		if _, ok := plan[s.VIPKey()]; !ok && s.HasClusterIP() {
			return fmt.Errorf("network %s is too small for %d workloads and %d Services with a cluster IP", prefix, len(m.Workloads), len(m.Services))
		}
	}
	return nil
}

// lastHost is the highest address of prefix below its broadcast address.
func lastHost(prefix netip.Prefix) netip.Addr {
	p := prefix.Masked()
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a.Prev()
}
