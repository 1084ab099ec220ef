package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshtls/meshtls/accesslog"
	"github.com/meshtls/meshtls/certs"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/mesh"
	"github.com/meshtls/meshtls/outcome"
	"github.com/meshtls/meshtls/pod"
)

// evidenceWait bounds how long a check waits for the access-log lines its
// connections announce, after the call returned. A proxy logs every
// connection it handled (tcp_proxy when it closes), so after a successful
// call each line comes and the wait ends on it; the deadline only matters
// when a hop left no line, which happens on failures (a TLS handshake that
// failed on an HTTP chain is not logged): those get a shorter budget.
const (
	evidenceWait       = 2 * time.Second
	evidenceWaitFailed = 500 * time.Millisecond
)

// Run makes one check's call and builds its trace from the evidence. When
// the check had an expectation and it did not hold, the evidence is saved
// under artifacts (if set) and the path is in the returned result's notes.
func (r *Runtime) Run(ctx context.Context, scenario string, c *mesh.Check) (*trace.Result, error) {
	if err := r.lost.err(); err != nil {
		return nil, fmt.Errorf("check %s: %w", c.Name, err)
	}
	ctx, cancel := r.lost.bound(ctx)
	defer cancel()
	from, ok := r.Pod(c.From)
	if !ok {
		return nil, fmt.Errorf("check %s: from %q: no such workload", c.Name, c.From)
	}
	req, dialNote, err := r.callRequest(c, from)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.Name, err)
	}
	marks := r.marks()
	start := time.Now()
	call, err := from.Agent.Call(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.Name, r.lost.explainLost(err))
	}
	obs := r.collect(ctx, scenario, c, from, call, marks, start)
	obs.Dial, obs.DialNote = req.Dial, dialNote
	if err := r.lost.err(); err != nil { // evidence from a lost mesh is no evidence
		return nil, fmt.Errorf("check %s: %w", c.Name, err)
	}
	res := trace.Build(obs)
	trace.Evaluate(res, c.Expect)
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

// callRequest turns a Check into the agent's call; dialNote says why a
// check via a gateway dials another port than its URL's.
func (r *Runtime) callRequest(c *mesh.Check, from *Pod) (req pod.CallRequest, dialNote string, err error) {
	// A check without a tls block trusts the default CAs of one with one
	// (docs/bundles.md tls.ca: ingress, app and public), as a curl trusts
	// its OS roots.
	req = pod.CallRequest{URL: c.To, ServerFirst: c.ServerFirst, CAs: mesh.DefaultCheckCAs}
	if t := c.TLS; t != nil {
		req.SNI, req.CAs, req.ClientCert, req.ALPN = t.SNI, t.CA, t.ClientCert, t.ALPN
		req.MinVersion, _ = mesh.CheckTLSVersion(t.MinVersion)
		req.MaxVersion, _ = mesh.CheckTLSVersion(t.MaxVersion)
		for _, name := range t.Ciphers {
			iana, ok := mesh.CipherSuiteName(name)
			if !ok {
				return req, "", fmt.Errorf("tls.cipherSuites: unknown cipher suite %q", name)
			}
			req.Ciphers = append(req.Ciphers, iana)
		}
		if t.HasCustomClientCert() {
			name, err := r.writeCheckClientCert(from, t)
			if err != nil {
				return req, "", err
			}
			req.ClientCert = name
		}
	}
	if c.Resolve != "" {
		// curl --resolve: the URL's host and port, dialled at the address
		// the name has in the caller's /etc/hosts.
		port, err := urlPort(c.To)
		if err != nil {
			return req, "", err
		}
		for _, e := range r.hosts(from.W) {
			name, ip, _ := strings.Cut(e, ":")
			if name == c.Resolve {
				req.Dial = net.JoinHostPort(ip, port)
				return req, fmt.Sprintf("resolve: %s is %s in the caller's pod", c.Resolve, ip), nil
			}
		}
		return req, "", fmt.Errorf("resolve %q: the name has no address in %s's pod", c.Resolve, from.W.ID())
	}
	if c.Via != "" {
		gw, ok := r.Pod(c.Via)
		if !ok {
			return req, "", fmt.Errorf("via %q: no such workload", c.Via)
		}
		port, err := urlPort(c.To)
		if err != nil {
			return req, "", err
		}
		// The URL's port is the gateway's as its clients know it: a port
		// of the gateway Service, which sends it to the targetPort the
		// gateway listens on (mesh.GatewayPort), as a load balancer in
		// front of the Service would.
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return req, "", fmt.Errorf("to %q: port %q: %w", c.To, port, err)
		}
		m, _ := r.current()
		listen, svc := m.GatewayPort(gw.W, uint32(n))
		if svc != nil && listen != uint32(n) {
			dialNote = fmt.Sprintf("via %s: port %d of its Service %s/%s targets %d, where the gateway listens", c.Via, n, svc.Namespace, svc.Name, listen)
		}
		req.Dial = net.JoinHostPort(gw.IP.String(), strconv.Itoa(int(listen)))
	}
	return req, dialNote, nil
}

// urlPort is the port a check's URL dials: its own, or its scheme's.
func urlPort(to string) (string, error) {
	u, err := url.Parse(to)
	if err != nil {
		return "", err
	}
	if p := u.Port(); p != "" {
		return p, nil
	}
	return map[string]string{"http": "80", "https": "443", "tls": "443"}[u.Scheme], nil
}

// writeCheckClientCert issues the client certificate a check asks for (its
// CA and SANs) and writes it into the calling pod's cert dir under a name
// derived from them; it returns that name for the agent.
func (r *Runtime) writeCheckClientCert(from *Pod, t *mesh.CheckTLS) (string, error) {
	kp, err := r.certs.ClientWithSAN(t.ClientCert, t.ClientURI, t.ClientDNS)
	if err != nil {
		return "", fmt.Errorf("tls.clientCert: %w", err)
	}
	sum := sha256.Sum256([]byte(t.ClientCert + "|" + t.ClientURI + "|" + t.ClientDNS))
	name := "check-" + hex.EncodeToString(sum[:8])
	if err := certs.WriteKeyPair(filepath.Join(from.Dir, "certs"), name, kp); err != nil {
		return "", fmt.Errorf("tls.clientCert: %w", err)
	}
	return name, nil
}

// marks are log positions before a call, so only new lines are considered.
type marks map[string]int

func (r *Runtime) marks() marks {
	m := marks{}
	for id, p := range r.pods {
		if p.Logs != nil {
			m[id] = p.Logs.Len()
		}
	}
	return m
}

// collect gathers the access-log lines and flows of the call, waiting for
// the chain of connections the evidence itself announces: the client's
// connection, then each proxy's upstream connection, until a hop ends in a
// pod without proxy or nothing more was forwarded.
func (r *Runtime) collect(ctx context.Context, scenario string, c *mesh.Check, from *Pod, call *pod.CallResult, mk marks, start time.Time) *trace.Observations {
	m, decisions := r.current()
	obs := &trace.Observations{
		Scenario:   scenario,
		Check:      c,
		Client:     from.W.ID(),
		Call:       call,
		Flows:      map[string][]pod.Flow{},
		AccessLogs: map[string][]accesslog.Entry{},
		Pods:       trace.PodsFromMesh(m, r.addrs),
		Decisions:  decisions,
		Since:      start,
	}
	budget := evidenceWait
	if call.Result != outcome.OK {
		budget = evidenceWaitFailed
	}
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	// Follow the connection: (pod whose proxy handled it, its downstream source).
	type step struct {
		p   *Pod
		src string
	}
	var next []step
	if call.LocalAddr != "" {
		if from.Logs != nil && from.W.Sidecar {
			next = append(next, step{from, call.LocalAddr})
		} else if p := r.podAt(r.translatedDst(ctx, from, call)); p != nil && p.Logs != nil {
			next = append(next, step{p, call.LocalAddr})
		}
	}
	for hops := 0; len(next) > 0 && hops < 8; hops++ {
		s := next[0]
		next = next[1:]
		// Wait for the line that ends the connection or request; a tcp_proxy
		// also writes one when its upstream connects, which is the evidence
		// left if the connection is still open when the budget runs out.
		this := func(l string) (accesslog.Entry, bool) {
			e, err := accesslog.Parse([]byte(l))
			return e, err == nil && e.DownstreamRemoteAddress == s.src
		}
		line, err := s.p.Logs.WaitFor(wctx, mk[s.p.W.ID()], func(l string) bool {
			e, ok := this(l)
			return ok && e.Event != accesslog.EventTCPConnected
		})
		if err != nil {
			line = ""
			for _, l := range s.p.Logs.Since(mk[s.p.W.ID()]) {
				if _, ok := this(l); ok {
					line = l
				}
			}
			if line == "" {
				continue // the hop was not handled by that proxy; the trace says so
			}
		}
		e, ok := this(line)
		if !ok || e.UpstreamLocalAddress == "" {
			continue
		}
		// A proxy's upstream to a cluster IP (PassthroughCluster, a DNS
		// cluster that resolved to it) left its pod through the DNAT there:
		// the pod's capture has the endpoint.
		if up := r.podAt(r.afterDNAT(ctx, s.p, e.UpstreamLocalAddress, e.UpstreamHost)); up != nil && up != s.p && up.Logs != nil {
			next = append(next, step{up, e.UpstreamLocalAddress})
		}
	}
	for id, p := range r.pods {
		if p.Logs != nil {
			if es, err := accesslog.ParseLog(strings.NewReader(strings.Join(p.Logs.Since(mk[id]), "\n"))); err == nil {
				obs.AccessLogs[id] = es
			}
		}
		if fl, err := p.Agent.Flows(ctx, 0); err == nil {
			obs.Flows[id] = fl
		}
	}
	return obs
}

// translatedDst is where a pod without sidecar really connected: a cluster
// IP (or a translated service port) is rewritten by the DNAT in its pod, so
// the pod's capture of the connection has the endpoint. The dialled address
// when the capture does not have it.
func (r *Runtime) translatedDst(ctx context.Context, from *Pod, call *pod.CallResult) string {
	return r.afterDNAT(ctx, from, call.LocalAddr, call.RemoteAddr)
}

// afterDNAT is where a connection from src that pod p opened to dst really
// went: dst itself when it is a pod, else the destination p's capture
// recorded for src (after the DNAT in p), else dst.
func (r *Runtime) afterDNAT(ctx context.Context, p *Pod, src, dst string) string {
	if r.podAt(dst) != nil || src == "" {
		return dst
	}
	fl, err := p.Agent.Flows(ctx, 0)
	if err != nil {
		return dst
	}
	for i := len(fl) - 1; i >= 0; i-- {
		if fl[i].Src == src {
			return fl[i].Dst
		}
	}
	return dst
}

// podAt finds the pod at an ip:port (or ip).
func (r *Runtime) podAt(hostport string) *Pod {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	for _, p := range r.pods {
		if p.IP == a {
			return p
		}
	}
	return nil
}

// SaveArtifacts writes every proxy's config dump, ssl stats and access log
// and every pod's capture under dir, and returns dir.
func (r *Runtime) SaveArtifacts(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, p := range r.pods {
		base := filepath.Join(dir, strings.ReplaceAll(p.W.ID(), "/", "."))
		if p.Admin != nil {
			if b, err := p.Admin.Get(ctx, "/config_dump?include_eds"); err == nil {
				// Envoy prints "[redacted]" for private keys in config dumps;
				// refuse to write one that has key material anyway.
				if !strings.Contains(string(b), "PRIVATE KEY") {
					_ = os.WriteFile(base+".config_dump.json", b, 0o644)
				}
			}
			if b, err := p.Admin.Get(ctx, "/stats?filter=ssl"); err == nil {
				_ = os.WriteFile(base+".ssl_stats.txt", b, 0o644)
			}
			_ = os.WriteFile(base+".access.log", []byte(strings.Join(p.Logs.Lines(), "\n")+"\n"), 0o644)
			_ = os.WriteFile(base+".envoy.log", []byte(strings.Join(p.EnvLog.Lines(), "\n")+"\n"), 0o644)
		}
		if p.Agent != nil {
			if b, err := p.Agent.Pcap(ctx); err == nil {
				_ = os.WriteFile(base+".pcap", b, 0o644)
			}
		}
	}
	return dir, nil
}
