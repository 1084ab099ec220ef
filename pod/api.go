// Package pod is the logic of the in-pod program (/meshtls-pod in every pod;
// see Main): the echo app, the client that makes a check's call from inside the pod, the packet
// capture on the pod's interface, and the traffic redirection istio-init
// would set up. The harness talks to it over a Unix socket (API below).
package pod

import "github.com/meshtls/meshtls/outcome"

// Paths inside every pod container (bind-mounted from the harness's run dir).
const (
	RunDir     = "/var/run/meshtls"         // per-pod dir: config, sockets, certs
	AgentSock  = RunDir + "/agent.sock"     // HTTP API below
	ConfigFile = RunDir + "/pod.json"       // Config
	CertDir    = RunDir + "/certs"          // app.crt/app.key, client.crt/client.key, untrusted.crt/untrusted.key
	CADir      = "/etc/meshtls/ca"          // <name>.pem for mesh, ingress, app, client, untrusted, public
	ReadyLine  = "meshtls-pod: agent ready" // printed on stdout once every port listens
)

// Config is written by the harness to ConfigFile.
type Config struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Ports     []Port `json:"ports"`
	// Capture the first flight of every TCP connection on Iface.
	Capture bool   `json:"capture"`
	Iface   string `json:"iface,omitempty"` // default eth0
}

// Port is one app port. The echo server sniffs what arrives: TLS (terminated
// when TLS is true, with CertDir/app.crt), then HTTP/1.1, h2c or raw TCP.
type Port struct {
	Name string `json:"name"`
	Port uint32 `json:"port"`
	TLS  bool   `json:"tls,omitempty"`
	// ServerFirst: greet each connection (after the TLS handshake when TLS
	// is set) with a Report line before reading anything.
	ServerFirst bool `json:"serverFirst,omitempty"`
}

// CallRequest asks the agent to make one call from inside the pod.
// POST /call
type CallRequest struct {
	URL        string   `json:"url"`                  // http://, https://, tcp://, tls://host:port/path
	Dial       string   `json:"dial,omitempty"`       // host:port to dial instead (a gateway); Host and SNI stay the URL's
	SNI        *string  `json:"sni,omitempty"`        // nil: URL host; "": send none
	CAs        []string `json:"cas,omitempty"`        // CA names trusted (files CADir/<name>.pem)
	ClientCert string   `json:"clientCert,omitempty"` // key pair CertDir/<name>.crt/.key: "client", "untrusted", or one the harness wrote for the check
	Payload    string   `json:"payload,omitempty"`    // tcp/tls: line to send (default "hello")
	// ServerFirst (tcp/tls): send nothing, read the server's greeting line.
	ServerFirst bool `json:"serverFirst,omitempty"`
	// Client TLS offer (https/tls): version range (crypto/tls numbers; 0:
	// Go's default), ALPN (nil: http/1.1 for https, none for tls) and TLS
	// 1.2-or-older cipher suites by IANA name (nil: Go's default).
	MinVersion uint16   `json:"minVersion,omitempty"`
	MaxVersion uint16   `json:"maxVersion,omitempty"`
	ALPN       []string `json:"alpn"` // nil (null): the default; empty: offer none
	Ciphers    []string `json:"ciphers,omitempty"`
	TimeoutMS  int      `json:"timeoutMs,omitempty"` // default 5000
}

// CallResult is what the client saw.
type CallResult struct {
	Result     outcome.Result `json:"result"` // ok, http-NNN (non-2xx), reset, refused, timeout, tls-error, dns-error, error
	Status     int            `json:"status,omitempty"`
	Body       string         `json:"body,omitempty"`
	Report     *Report        `json:"report,omitempty"` // the echo app's report, when the body is one
	Error      string         `json:"error,omitempty"`
	LocalAddr  string         `json:"localAddr,omitempty"`  // client side of the TCP connection
	RemoteAddr string         `json:"remoteAddr,omitempty"` // address dialled
	TLS        *TLSInfo       `json:"tls,omitempty"`        // TLS the client negotiated (https/tls URLs)
	DurationMS int64          `json:"durationMs"`
}

// Report is what the echo server saw; HTTP answers carry it as the JSON body,
// raw TCP answers as one JSON line.
type Report struct {
	Workload   string              `json:"workload"` // namespace/name
	Port       uint32              `json:"port"`
	Protocol   string              `json:"protocol"` // HTTP/1.1, HTTP/2.0, tcp
	Method     string              `json:"method,omitempty"`
	Host       string              `json:"host,omitempty"`
	Path       string              `json:"path,omitempty"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Payload    string              `json:"payload,omitempty"` // tcp: the line received
	TLS        *TLSInfo            `json:"tls,omitempty"`     // TLS the app terminated itself
	RemoteAddr string              `json:"remoteAddr"`
	LocalAddr  string              `json:"localAddr"`
}

// TLSInfo describes one TLS session from one side.
type TLSInfo struct {
	Version     string   `json:"version"` // TLSv1.2, TLSv1.3
	SNI         string   `json:"sni,omitempty"`
	ALPN        string   `json:"alpn,omitempty"`
	PeerSubject string   `json:"peerSubject,omitempty"`
	PeerURIs    []string `json:"peerUris,omitempty"`
	PeerDNS     []string `json:"peerDns,omitempty"`
	PeerSerial  string   `json:"peerSerial,omitempty"`
	PeerIssuer  string   `json:"peerIssuer,omitempty"`
}

// Flow is the first flight of one TCP connection seen on the pod interface.
// GET /flows?since=SEQ returns []Flow with Seq > SEQ.
type Flow struct {
	Seq        uint64 `json:"seq"`
	TimeUnixMS int64  `json:"timeMs"`
	Src        string `json:"src"` // ip:port of the connection's initiator
	Dst        string `json:"dst"`
	// Client's first payload: "plaintext" or "tls" (a TLS ClientHello).
	Kind string   `json:"kind"`
	SNI  string   `json:"sni,omitempty"`
	ALPN []string `json:"alpn,omitempty"`
	// Highest version the ClientHello offers (supported_versions), e.g. TLSv1.3.
	TLSVersion string `json:"tlsVersion,omitempty"`
	// ServerVersion is the version in the ServerHello, when seen.
	ServerVersion string `json:"serverVersion,omitempty"`
	Preview       string `json:"preview,omitempty"` // plaintext: first bytes, printable only, up to 64
}
