package mesh

import (
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	networkingapi "istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshtls/meshtls/outcome"
)

// Names the harness knows: certificate authorities and check vocabulary.
var (
	KnownCAs         = []string{"mesh", "ingress", "app", "client", "untrusted", "public"}
	KnownAppCAs      = []string{"app", "public"}
	KnownClientCerts = []string{"client", "untrusted"}
	CheckSchemes     = []string{"http", "https", "tcp", "tls"}
	// KnownHopTLSVersions are the versions a hop expectation may name, as Envoy's access log spells them.
	KnownHopTLSVersions = []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", outcome.Absent}
)

// validate runs the semantic and cross-reference checks once every
// document is loaded. Istio's own rules come from
// pkg/config/validation/validation.go; reference checks mirror istioctl
// analyze (pkg/config/analysis/analyzers/...).
func (l *loader) validate() {
	m := l.m
	at := func(kind, ns, name string) func(field, msg string) {
		key := kind + "/" + ns + "/" + name
		src := m.Sources[key]
		if l.broken[key] {
			return func(string, string) {} // already reported; spec is incomplete
		}
		return func(field, msg string) { l.add(src, kind, ns+"/"+name, field, msg) }
	}
	for _, w := range m.Workloads {
		l.validateWorkload(w, at("Workload", w.Namespace, w.Name))
	}
	for _, s := range m.Secrets {
		rep := at("Secret", s.Namespace, s.Name)
		if s.Type != "kubernetes.io/tls" {
			rep("type", fmt.Sprintf("unsupported value %q (allowed: kubernetes.io/tls)", s.Type))
		}
		for _, k := range sortedKeys(s.Data) {
			if !slices.Contains([]string{"tls.crt", "tls.key", "ca.crt"}, k) {
				rep("data."+k, fmt.Sprintf("unknown key %q (allowed: tls.crt, tls.key, ca.crt)", k))
			} else if b, _ := pem.Decode(s.Data[k]); b == nil {
				rep("data."+k, "not PEM data")
			}
		}
		for _, k := range []string{"tls.crt", "tls.key"} {
			if _, ok := s.Data[k]; !ok {
				rep("data", fmt.Sprintf("%s is required for a kubernetes.io/tls Secret", k))
			}
		}
	}
	for _, pa := range m.PeerAuthentications {
		rep := at("PeerAuthentication", pa.Namespace, pa.Name)
		// Source: validation.go ValidatePeerAuthentication.
		if len(pa.Spec.GetPortLevelMtls()) > 0 && !hasSelector(pa) {
			rep("spec.portLevelMtls", "mesh/namespace policy cannot have port level mTLS (set spec.selector.matchLabels)")
		}
		for port := range pa.Spec.GetPortLevelMtls() {
			if port == 0 {
				rep("spec.portLevelMtls", "port cannot be 0")
			}
		}
	}
	owner := map[netip.Addr]*Workload{}
	for _, w := range m.Workloads {
		for i, a := range w.Addresses {
			if o, dup := owner[a]; dup {
				at("Workload", w.Namespace, w.Name)(fmt.Sprintf("spec.addresses[%d]", i), fmt.Sprintf("%s is already an address of workload %s: one server answers each address", a, o.ID()))
			}
			owner[a] = w
		}
	}
	for _, s := range m.Services {
		if s.ExternalName != "" && !s.Implied {
			l.validateExternalName(s, at("Service", s.Namespace, s.Name))
		}
	}
	for _, dr := range m.DestinationRules {
		l.validateDR(dr, at("DestinationRule", dr.Namespace, dr.Name))
	}
	for _, g := range m.Gateways {
		l.validateGateway(g, at("Gateway", g.Namespace, g.Name))
	}
	for _, se := range m.ServiceEntries {
		rep := at("ServiceEntry", se.Namespace, se.Name)
		if len(se.Spec.GetHosts()) == 0 {
			rep("spec.hosts", "at least one host is required")
		}
		for i, p := range se.Spec.GetPorts() {
			validatePortNumber(fmt.Sprintf("spec.ports[%d].number", i), p.GetNumber(), rep)
			if p.GetProtocol() != "" && parseProtocol(p.GetProtocol()) == ProtoAuto {
				rep(fmt.Sprintf("spec.ports[%d].protocol", i), fmt.Sprintf("unknown value %q (allowed: %s)", p.GetProtocol(), istioProtocols))
			}
		}
	}
	for _, vs := range m.VirtualServices {
		l.validateVS(vs, at("VirtualService", vs.Namespace, vs.Name))
	}
	for _, sc := range m.Sidecars {
		l.validateSidecar(sc, at("Sidecar", sc.Namespace, sc.Name))
	}
	for _, c := range m.Checks {
		l.validateCheck(c, at("Check", c.Namespace, c.Name))
	}
}

const istioProtocols = "HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, REDIS, MYSQL, TCP, TLS"

func validatePortNumber(field string, n uint32, rep report) {
	if n == 0 || n > 65535 {
		rep(field, fmt.Sprintf("must be 1-65535, got %d", n))
	}
}

func (l *loader) validateWorkload(w *Workload, rep report) {
	if w.Gateway && w.External {
		rep("spec", "gateway and external cannot both be true")
	}
	if w.AppCA != "" && w.Gateway {
		rep("spec.appCA", "a gateway runs no app: remove appCA")
	} else if w.AppCA != "" && !slices.Contains(KnownAppCAs, w.AppCA) {
		rep("spec.appCA", fmt.Sprintf("unknown CA %q for the app's certificate (allowed: %s)", w.AppCA, strings.Join(KnownAppCAs, ", ")))
	}
	names, ports := map[string]bool{}, map[uint32]bool{}
	for i, p := range w.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		validatePortNumber(f+".port", p.Port, rep)
		if slices.Contains(IstioReservedPorts, p.Port) {
			rep(f+".port", fmt.Sprintf("port %d is used by Istio's sidecar (reserved: %s); choose another port", p.Port, reservedPortList()))
		}
		if ports[p.Port] {
			rep(f+".port", fmt.Sprintf("duplicate port %d", p.Port))
		}
		ports[p.Port] = true
		if p.Name != "" && w.Kind == "Workload" { // Kubernetes pods take port names from their Services
			if names[p.Name] {
				rep(f+".name", fmt.Sprintf("duplicate port name %q", p.Name))
			}
			names[p.Name] = true
		}
	}
}

// IstioReservedPorts are the ports the sidecar itself uses in every pod;
// applications must not use them. A workload port among them makes its
// Service port collide with the proxy's own listeners (e.g. 15001: every
// client's outbound listener 0.0.0.0_15001 duplicates virtualOutbound, and
// Envoy rejects the whole LDS update).
// https://istio.io/latest/docs/ops/deployment/application-requirements/#ports-used-by-istio
var IstioReservedPorts = []uint32{15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090}

func reservedPortList() string {
	s := make([]string, len(IstioReservedPorts))
	for i, p := range IstioReservedPorts {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// validateClientTLS mirrors validation.go validateTLS (DestinationRule).
func validateClientTLS(field string, t *networkingapi.ClientTLSSettings, rep report) {
	if t == nil {
		return
	}
	mode := t.GetMode()
	simpleOrMutual := mode == networkingapi.ClientTLSSettings_SIMPLE || mode == networkingapi.ClientTLSSettings_MUTUAL
	if t.GetInsecureSkipVerify().GetValue() {
		if mode == networkingapi.ClientTLSSettings_SIMPLE && (t.GetCaCertificates() != "" || t.GetCredentialName() != "" || len(t.GetSubjectAltNames()) > 0) {
			rep(field, "cannot specify caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true")
		}
		if mode == networkingapi.ClientTLSSettings_MUTUAL && (t.GetCaCertificates() != "" || len(t.GetSubjectAltNames()) > 0) {
			rep(field, "cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true")
		}
	}
	if simpleOrMutual && t.GetCredentialName() != "" {
		if t.GetClientCertificate() != "" || t.GetCaCertificates() != "" || t.GetPrivateKey() != "" || t.GetCaCrl() != "" {
			rep(field, "cannot specify clientCertificate, privateKey, caCertificates or caCrl when credentialName is set")
		}
		return
	}
	if mode == networkingapi.ClientTLSSettings_MUTUAL {
		if t.GetClientCertificate() == "" {
			rep(field+".clientCertificate", "required for mode MUTUAL (or set credentialName)")
		}
		if t.GetPrivateKey() == "" {
			rep(field+".privateKey", "required for mode MUTUAL (or set credentialName)")
		}
	}
}

func validateTrafficPolicy(field string, tp *networkingapi.TrafficPolicy, rep report) {
	if tp == nil {
		return
	}
	validateClientTLS(field+".tls", tp.GetTls(), rep)
	seen := map[uint32]bool{}
	for i, pl := range tp.GetPortLevelSettings() {
		f := fmt.Sprintf("%s.portLevelSettings[%d]", field, i)
		if pl.GetPort() == nil {
			rep(f+".port", "required")
		} else {
			validatePortNumber(f+".port.number", pl.GetPort().GetNumber(), rep)
			if seen[pl.GetPort().GetNumber()] {
				rep(f+".port.number", fmt.Sprintf("duplicate port %d", pl.GetPort().GetNumber()))
			}
			seen[pl.GetPort().GetNumber()] = true
		}
		validateClientTLS(f+".tls", pl.GetTls(), rep)
	}
}

func (l *loader) validateDR(dr *networking.DestinationRule, rep report) {
	if dr.Spec.GetHost() == "" {
		rep("spec.host", "required")
	}
	validateTrafficPolicy("spec.trafficPolicy", dr.Spec.GetTrafficPolicy(), rep)
	names := map[string]bool{}
	for i, s := range dr.Spec.GetSubsets() {
		f := fmt.Sprintf("spec.subsets[%d]", i)
		if s.GetName() == "" {
			rep(f+".name", "required")
		} else if names[s.GetName()] {
			rep(f+".name", fmt.Sprintf("duplicate subset %q", s.GetName()))
		}
		names[s.GetName()] = true
		validateTrafficPolicy(f+".trafficPolicy", s.GetTrafficPolicy(), rep)
	}
}

// validateServerTLS mirrors validation.go validateTLSOptions (Gateway).
func validateServerTLS(field string, t *networkingapi.ServerTLSSettings, rep report) {
	if t == nil {
		return
	}
	mode := t.GetMode()
	if mode == networkingapi.ServerTLSSettings_ISTIO_MUTUAL {
		for _, f := range []struct{ name, val string }{
			{"serverCertificate", t.GetServerCertificate()}, {"privateKey", t.GetPrivateKey()},
			{"caCertificates", t.GetCaCertificates()}, {"credentialName", t.GetCredentialName()},
		} {
			if f.val != "" {
				rep(field+"."+f.name, "must not be set with mode ISTIO_MUTUAL (it uses the workload certificate)")
			}
		}
		return
	}
	terminating := mode == networkingapi.ServerTLSSettings_SIMPLE || mode == networkingapi.ServerTLSSettings_MUTUAL ||
		mode == networkingapi.ServerTLSSettings_OPTIONAL_MUTUAL
	if !terminating {
		return
	}
	if t.GetCredentialName() != "" || len(t.GetCredentialNames()) > 0 || len(t.GetTlsCertificates()) > 0 {
		return // credentials come from a Secret; files are not required
	}
	if t.GetServerCertificate() == "" {
		rep(field+".serverCertificate", fmt.Sprintf("required for mode %s (or set credentialName)", mode))
	}
	if t.GetPrivateKey() == "" {
		rep(field+".privateKey", fmt.Sprintf("required for mode %s (or set credentialName)", mode))
	}
	if mode != networkingapi.ServerTLSSettings_SIMPLE && t.GetCaCertificates() == "" {
		rep(field+".caCertificates", fmt.Sprintf("required for mode %s (or set credentialName)", mode))
	}
}

// validateGateway mirrors validation.go validateServer / validateServerPort.
func (l *loader) validateGateway(g *networking.Gateway, rep report) {
	if len(g.Spec.GetServers()) == 0 {
		rep("spec.servers", "at least one server is required")
	}
	for i, s := range g.Spec.GetServers() {
		f := fmt.Sprintf("spec.servers[%d]", i)
		if len(s.GetHosts()) == 0 {
			rep(f+".hosts", "at least one host is required")
		}
		p := s.GetPort()
		if p == nil {
			rep(f+".port", "required")
			continue
		}
		validatePortNumber(f+".port.number", p.GetNumber(), rep)
		if p.GetName() == "" {
			rep(f+".port.name", "required")
		}
		proto := parseProtocol(p.GetProtocol())
		if proto == ProtoAuto || proto == ProtoUDP {
			rep(f+".port.protocol", fmt.Sprintf("unknown value %q (allowed: %s)", p.GetProtocol(), istioProtocols))
			continue
		}
		validateServerTLS(f+".tls", s.GetTls(), rep)
		t := s.GetTls()
		switch {
		case proto.IsTLS() && t == nil:
			rep(f+".tls", fmt.Sprintf("required for protocol %s", p.GetProtocol()))
		case !proto.IsTLS() && t != nil && proto.IsHTTP():
			// Only httpsRedirect makes sense on a plain-text HTTP server.
			if t.GetMode() != networkingapi.ServerTLSSettings_PASSTHROUGH || t.GetServerCertificate() != "" ||
				t.GetPrivateKey() != "" || t.GetCaCertificates() != "" || t.GetCredentialName() != "" {
				rep(f+".tls", "a plain-text HTTP server cannot have TLS settings other than httpsRedirect")
			}
		}
	}
}

func (l *loader) validateVS(vs *networking.VirtualService, rep report) {
	m := l.m
	if len(vs.Spec.GetHosts()) == 0 {
		rep("spec.hosts", "at least one host is required")
	}
	for i, g := range vs.Spec.GetGateways() {
		ref := ResolveGatewayRef(g, vs.Namespace)
		if ref == MeshGateway {
			continue
		}
		if _, ok := m.Sources["Gateway/"+ref]; !ok {
			rep(fmt.Sprintf("spec.gateways[%d]", i), fmt.Sprintf("Gateway %s not found in the bundle", ref))
		}
	}
	checkDest := func(f string, d *networkingapi.Destination) {
		if d == nil {
			rep(f, "required")
			return
		}
		if d.GetHost() == "" {
			rep(f+".host", "required")
			return
		}
		if d.GetSubset() != "" && !l.subsetDefined(resolveShortname(d.GetHost(), vs.Namespace), d.GetSubset()) {
			rep(f+".subset", fmt.Sprintf("subset %q is not defined by any DestinationRule for host %s", d.GetSubset(), d.GetHost()))
		}
	}
	for i, r := range vs.Spec.GetHttp() {
		for j, d := range r.GetRoute() {
			checkDest(fmt.Sprintf("spec.http[%d].route[%d].destination", i, j), d.GetDestination())
		}
		if r.GetMirror() != nil {
			checkDest(fmt.Sprintf("spec.http[%d].mirror", i), r.GetMirror())
		}
	}
	for i, r := range vs.Spec.GetTls() {
		// Source: validation.go validateTLSRoute: sniHosts are required.
		if len(r.GetMatch()) == 0 {
			rep(fmt.Sprintf("spec.tls[%d].match", i), "at least one match with sniHosts is required")
		}
		for k, mt := range r.GetMatch() {
			if len(mt.GetSniHosts()) == 0 {
				rep(fmt.Sprintf("spec.tls[%d].match[%d].sniHosts", i, k), "at least one SNI host is required")
			}
		}
		for j, d := range r.GetRoute() {
			checkDest(fmt.Sprintf("spec.tls[%d].route[%d].destination", i, j), d.GetDestination())
		}
	}
	for i, r := range vs.Spec.GetTcp() {
		for j, d := range r.GetRoute() {
			checkDest(fmt.Sprintf("spec.tcp[%d].route[%d].destination", i, j), d.GetDestination())
		}
	}
}

// subsetDefined: some DestinationRule whose host covers host has the subset,
// as istioctl analyze checks (analyzers/virtualservice/destinationrules.go).
func (l *loader) subsetDefined(host, subset string) bool {
	for _, dr := range l.m.DestinationRules {
		if !hostMatches(resolveShortname(dr.Spec.GetHost(), dr.Namespace), host) {
			continue
		}
		for _, s := range dr.Spec.GetSubsets() {
			if s.GetName() == subset {
				return true
			}
		}
	}
	return false
}

func (l *loader) validateCheck(c *Check, rep report) {
	m := l.m
	if c.From == "" {
		rep("spec.from", "required (a workload name, or namespace/name)")
	} else if _, ok := m.Workload(c.From); !ok {
		rep("spec.from", fmt.Sprintf("workload %q not found in the bundle", c.From))
	}
	if c.Via != "" {
		if w, ok := m.Workload(c.Via); !ok {
			rep("spec.via", fmt.Sprintf("workload %q not found in the bundle", c.Via))
		} else if !w.Gateway {
			rep("spec.via", fmt.Sprintf("workload %q is not a gateway (spec.gateway: true)", c.Via))
		}
	}
	if c.Resolve != "" {
		w, _ := m.Workload(c.From)
		switch {
		case c.Via != "":
			rep("spec.resolve", "set either via or resolve: both say where to dial")
		case w != nil && !m.Resolves(c.Resolve, w.Namespace):
			rep("spec.resolve", fmt.Sprintf("%q resolves to nothing in the bundle (a Service name, in any form Kubernetes DNS answers from the caller's namespace, or a Workload's hostname)", c.Resolve))
		}
	}
	scheme := ""
	if c.To == "" {
		rep("spec.to", fmt.Sprintf("required (a URL with scheme %s)", strings.Join(CheckSchemes, ", ")))
	} else if u, err := url.Parse(c.To); err != nil {
		rep("spec.to", fmt.Sprintf("not a URL: %v", err))
	} else {
		scheme = u.Scheme
		switch {
		case !slices.Contains(CheckSchemes, u.Scheme):
			rep("spec.to", fmt.Sprintf("unsupported scheme %q (allowed: %s)", u.Scheme, strings.Join(CheckSchemes, ", ")))
		case u.Hostname() == "":
			rep("spec.to", "the URL has no host")
		case u.Port() == "" && (u.Scheme == "tcp" || u.Scheme == "tls"):
			rep("spec.to", fmt.Sprintf("a %s URL needs a port", u.Scheme))
		case u.Port() != "":
			if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
				rep("spec.to", fmt.Sprintf("port %q must be 1-65535", u.Port()))
			}
		}
	}
	if t := c.TLS; t != nil {
		if scheme == "http" || scheme == "tcp" {
			rep("spec.tls", fmt.Sprintf("applies only to https and tls URLs, not %s", scheme))
		}
		for i, ca := range t.CA {
			if !slices.Contains(KnownCAs, ca) {
				rep(fmt.Sprintf("spec.tls.ca[%d]", i), fmt.Sprintf("unknown CA %q (allowed: %s)", ca, strings.Join(KnownCAs, ", ")))
			}
		}
		validateCheckTLS(t, rep)
	}
	if c.ServerFirst && (scheme == "http" || scheme == "https") {
		rep("spec.serverFirst", fmt.Sprintf("applies only to tcp and tls URLs, not %s (HTTP clients speak first)", scheme))
	}
	if e := c.Expect; e != nil {
		if e.Result != "" && !e.Result.Expectable() {
			rep("spec.expect.result", fmt.Sprintf("unknown value %q (allowed: %s)", e.Result, outcome.ExpectableResults))
		}
		for i, w := range e.Wire {
			if !slices.Contains(outcome.Wires, w) {
				rep(fmt.Sprintf("spec.expect.wire[%d]", i), fmt.Sprintf("unknown value %q (allowed: %s)", w, outcome.Join(outcome.Wires, ", ")))
			}
		}
		if e.Peer != "" && e.Peer != outcome.PeerNone && !strings.HasPrefix(e.Peer, "spiffe://") && !isSubject(e.Peer) {
			rep("spec.expect.peer", fmt.Sprintf("must be a SPIFFE ID (spiffe://...), a certificate subject without URI SAN (CN=name,O=org) or none, got %q", e.Peer))
		}
		if e.ServedBy != "" {
			if _, ok := m.Workload(e.ServedBy); !ok {
				rep("spec.expect.servedBy", fmt.Sprintf("workload %q not found in the bundle", e.ServedBy))
			}
		}
		for i, h := range e.Hops {
			if h.TLSVersion != "" && !slices.Contains(KnownHopTLSVersions, h.TLSVersion) {
				rep(fmt.Sprintf("spec.expect.hops[%d].tlsVersion", i), fmt.Sprintf("unknown value %q (allowed: %s)", h.TLSVersion, strings.Join(KnownHopTLSVersions, ", ")))
			}
			for j, a := range h.ALPN {
				if a == "" {
					rep(fmt.Sprintf("spec.expect.hops[%d].alpn[%d]", i, j), "must not be empty")
				}
			}
		}
	}
}

// isSubject reports whether s reads as a certificate subject, the peer a
// receiver outside the mesh verified from a certificate without URI SAN
// (a MUTUAL origination's client certificate): ATTR=value pairs joined by
// commas, as Go and Envoy print them.
func isSubject(s string) bool {
	for rdn := range strings.SplitSeq(s, ",") {
		attr, value, ok := strings.Cut(rdn, "=")
		if !ok || attr == "" || value == "" || strings.ContainsAny(attr, " /:") {
			return false
		}
	}
	return true
}

// validateCheckTLS checks the client's TLS settings of a Check.
func validateCheckTLS(t *CheckTLS, rep report) {
	switch {
	case t.ClientCert == "" && (t.ClientURI != "" || t.ClientDNS != ""):
		rep("spec.tls.clientCert", "required with clientURI or clientDNS: name the CA that issues the certificate ("+strings.Join(KnownCAs, ", ")+")")
	case t.ClientCert == "":
	case !slices.Contains(KnownCAs, t.ClientCert):
		rep("spec.tls.clientCert", fmt.Sprintf("unknown CA %q (allowed: %s)", t.ClientCert, strings.Join(KnownCAs, ", ")))
	}
	if t.ClientURI != "" {
		if u, err := url.Parse(t.ClientURI); err != nil || u.Scheme == "" {
			rep("spec.tls.clientURI", fmt.Sprintf("must be an absolute URI such as spiffe://cluster.local/ns/default/sa/a, got %q", t.ClientURI))
		}
	}
	if t.ClientDNS != "" && !dnsNameRE.MatchString(t.ClientDNS) {
		rep("spec.tls.clientDNS", fmt.Sprintf("must be a DNS name such as client.example.com, got %q", t.ClientDNS))
	}
	versions := strings.Join(sortedKeys(checkTLSVersions), ", ")
	minV, minOK := CheckTLSVersion(t.MinVersion)
	maxV, maxOK := CheckTLSVersion(t.MaxVersion)
	if t.MinVersion != "" && !minOK {
		rep("spec.tls.minVersion", fmt.Sprintf("unknown value %q (allowed: %s)", t.MinVersion, versions))
	}
	if t.MaxVersion != "" && !maxOK {
		rep("spec.tls.maxVersion", fmt.Sprintf("unknown value %q (allowed: %s)", t.MaxVersion, versions))
	}
	if minOK && maxOK && minV > maxV {
		rep("spec.tls.minVersion", fmt.Sprintf("%s is above maxVersion %s", t.MinVersion, t.MaxVersion))
	}
	for i, a := range t.ALPN {
		if a == "" || len(a) > 255 {
			rep(fmt.Sprintf("spec.tls.alpn[%d]", i), "an ALPN protocol name is 1-255 bytes (e.g. h2, http/1.1, istio-peer-exchange)")
		}
	}
	for i, c := range t.Ciphers {
		if _, ok := CipherSuiteName(c); !ok {
			rep(fmt.Sprintf("spec.tls.cipherSuites[%d]", i), fmt.Sprintf("unknown or TLS 1.3-only cipher suite %q (allowed: %s, or their IANA names)", c, knownCipherNames()))
		}
	}
}

var dnsNameRE = regexp.MustCompile(`^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)
