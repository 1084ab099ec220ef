package mesh

import (
	"errors"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// The questions the translator asks. Signatures are the contract between
// mesh and xds; bodies belong to the mesh package owner.

// MTLSMode is an effective PeerAuthentication mode.
type MTLSMode string

const (
	ModeStrict     MTLSMode = "STRICT"
	ModePermissive MTLSMode = "PERMISSIVE"
	ModeDisable    MTLSMode = "DISABLE"
)

// Protocol is Istio's protocol class for a port.
type Protocol string

const (
	ProtoHTTP  Protocol = "HTTP"
	ProtoHTTP2 Protocol = "HTTP2"
	ProtoGRPC  Protocol = "GRPC"
	ProtoHTTPS Protocol = "HTTPS"
	ProtoTLS   Protocol = "TLS"
	ProtoTCP   Protocol = "TCP"
	ProtoUDP   Protocol = "UDP"
	ProtoMongo Protocol = "Mongo"
	ProtoRedis Protocol = "Redis"
	ProtoMySQL Protocol = "MySQL"
	ProtoAuto  Protocol = "" // not declared: auto-detection
)

var errTODO = errors.New("mesh: not implemented yet")

// PortProtocol selects the protocol as Istio does: appProtocol wins, then the
// port name prefix before the first '-', case-insensitive; else auto, except
// ports 25, 53, 3306, 27017 which are TCP.
func PortProtocol(name, appProtocol string, port uint32) Protocol { panic(errTODO) }

// IsHTTP: HTTP, HTTP2, GRPC (HTTP class). IsTCP: TCP class (TCP, HTTPS, TLS, Mongo, Redis, MySQL).
func (p Protocol) IsHTTP() bool { panic(errTODO) }
func (p Protocol) IsTCP() bool  { panic(errTODO) }

// Workload finds a workload by ref ("name" in default, or "namespace/name").
func (m *Mesh) Workload(ref string) (*Workload, bool) { panic(errTODO) }

// EffectiveMTLS is the PeerAuthentication mode for a workload's port:
// port-level > workload selector > namespace > mesh (root ns) > PERMISSIVE; UNSET inherits.
func (m *Mesh) EffectiveMTLS(w *Workload, port uint32) MTLSMode { panic(errTODO) }

// NamespaceMTLS is the mode from mesh- and namespace-level policy only, the
// one Istio infers for a whole service under auto mTLS.
func (m *Mesh) NamespaceMTLS(ns string) MTLSMode { panic(errTODO) }

// Services lists all services (given and implied); ServiceByHost finds one by
// FQDN or short forms resolved from clientNS ("b", "b.default", "b.default.svc").
func (m *Mesh) ServiceByHost(host, clientNS string) (*Service, bool) { panic(errTODO) }

// Endpoints are the workloads a service selects (same namespace, labels match).
func (m *Mesh) Endpoints(s *Service) []*Workload { panic(errTODO) }

// ServiceAccounts of a service's endpoints, as SPIFFE IDs, sorted.
func (m *Mesh) ServiceAccounts(s *Service) []string { panic(errTODO) }

// DestinationRuleFor is the DestinationRule that applies to host for a client
// in clientNS: exact host before wildcard, most specific wildcard first;
// client namespace, then the host's namespace, then the root namespace;
// exportTo honoured. nil when none.
func (m *Mesh) DestinationRuleFor(host, clientNS string) *networking.DestinationRule { panic(errTODO) }

// ClientTLS is the TLS a client sends to host:port (subset may be ""):
// subset portLevelSettings > subset trafficPolicy > DR portLevelSettings >
// DR trafficPolicy. nil means no tls set anywhere: auto mTLS.
func (m *Mesh) ClientTLS(host string, port uint32, subset, clientNS string) *networkingapi.ClientTLSSettings {
	panic(errTODO)
}

// Subset finds a named subset of the DestinationRule that applies to host.
func (m *Mesh) Subset(host, subset, clientNS string) (*networkingapi.Subset, bool) { panic(errTODO) }

// GatewayServer is one server of a Gateway resource that selects a gateway workload.
type GatewayServer struct {
	Gateway *networking.Gateway
	Server  *networkingapi.Server
}

// GatewayServers lists the servers of every Gateway whose selector matches
// gw's labels (any namespace, as Istio by default).
func (m *Mesh) GatewayServers(gw *Workload) []GatewayServer { panic(errTODO) }

// VirtualServicesFor lists VirtualServices bound to gateway ("ns/name"), or
// to the sidecars when gateway is "mesh" (a VS with no gateways is bound to
// "mesh"), visible from clientNS.
func (m *Mesh) VirtualServicesFor(gateway, clientNS string) []*networking.VirtualService {
	panic(errTODO)
}

// ServiceEntryHosts lists the ServiceEntries visible from clientNS.
func (m *Mesh) ServiceEntriesFor(clientNS string) []*networking.ServiceEntry { panic(errTODO) }
