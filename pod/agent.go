package pod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// AgentOptions are the knobs tests need; the zero value is the in-pod agent.
type AgentOptions struct {
	Paths      Paths  // default DefaultPaths()
	ListenHost string // default "0.0.0.0"
	Logf       func(string, ...any)
}

// Agent is the pod's resident program: the echo app on every port, the
// control API and, when configured, packet capture.
type Agent struct {
	cfg   Config
	opts  AgentOptions
	ready atomic.Bool

	mu       sync.Mutex
	echos    []*Echo
	addrs    []net.Addr
	capture  *Capture
	capErr   error
	apiSrv   *http.Server
	apiLn    net.Listener
	sockPath string
}

// LoadConfig reads a pod.Config from path.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	err := readJSON(path, &cfg, "pod config")
	return cfg, err
}

// readJSON reads into v a JSON file the harness wrote into the pod's run
// dir; what names it in errors.
func readJSON(path string, v any, what string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w (the harness writes it into the pod's run dir)", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// NewAgent prepares an agent; Start makes it listen.
func NewAgent(cfg Config, opts AgentOptions) *Agent {
	if opts.Paths == (Paths{}) {
		opts.Paths = DefaultPaths()
	}
	if opts.ListenHost == "" {
		opts.ListenHost = "0.0.0.0"
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	return &Agent{cfg: cfg, opts: opts}
}

// Start listens on every app port and starts capture. A capture failure is
// not fatal: it is remembered and reported by /flows and /pcap.
func (a *Agent) Start() error {
	workload := a.cfg.Namespace + "/" + a.cfg.Name
	if a.cfg.Capture {
		iface := a.cfg.Iface
		if iface == "" {
			iface = "eth0"
		}
		c, err := StartCapture(iface)
		a.mu.Lock()
		a.capture, a.capErr = c, err
		a.mu.Unlock()
		if err != nil {
			a.opts.Logf("meshtls-pod: capture unavailable: %v", err)
		}
	}
	for _, p := range a.cfg.Ports {
		e, err := NewEcho(workload, p, a.opts.Paths)
		if err != nil {
			a.Close()
			return err
		}
		e.logf = a.opts.Logf
		addr := net.JoinHostPort(a.opts.ListenHost, strconv.Itoa(int(p.Port)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			a.Close()
			return fmt.Errorf("echo port %d (%s): %w", p.Port, p.Name, err)
		}
		if p.Port == 0 { // tests: report the port actually bound
			e.port.Port = uint32(ln.Addr().(*net.TCPAddr).Port)
		}
		a.mu.Lock()
		a.echos = append(a.echos, e)
		a.addrs = append(a.addrs, ln.Addr())
		a.mu.Unlock()
		go func() {
			if err := e.Serve(ln); err != nil {
				a.opts.Logf("meshtls-pod: %v", err)
			}
		}()
	}
	a.ready.Store(true)
	return nil
}

// Addrs are the app listeners' addresses, in Config.Ports order.
func (a *Agent) Addrs() []net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]net.Addr(nil), a.addrs...)
}

// ServeSocket serves the API on a Unix socket, replacing a stale one.
func (a *Agent) ServeSocket(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale agent socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = ln.Close()
		return fmt.Errorf("chmod agent socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	a.mu.Lock()
	a.apiSrv, a.apiLn, a.sockPath = srv, ln, path
	a.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Close stops everything the agent started.
func (a *Agent) Close() {
	a.mu.Lock()
	echos, c, srv, sock := a.echos, a.capture, a.apiSrv, a.sockPath
	a.echos, a.capture, a.apiSrv = nil, nil, nil
	a.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		_ = os.Remove(sock)
	}
	for _, e := range echos {
		_ = e.Close()
	}
	if c != nil {
		_ = c.Close()
	}
}

// Handler is the agent API (paths in api.go's package doc).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "app ports not listening yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		var req CallRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad CallRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, Call(r.Context(), req, a.opts.Paths))
	})
	mux.HandleFunc("GET /flows", func(w http.ResponseWriter, r *http.Request) {
		c, err := a.captureState()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var since uint64
		if s := r.URL.Query().Get("since"); s != "" {
			if since, err = strconv.ParseUint(s, 10, 64); err != nil {
				http.Error(w, "since must be a flow sequence number: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		flows, err := c.Flows(since)
		if err != nil {
			http.Error(w, "capture: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, flows)
	})
	mux.HandleFunc("GET /pcap", func(w http.ResponseWriter, r *http.Request) {
		c, err := a.captureState()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
		_ = c.WritePcap(w)
	})
	return mux
}

func (a *Agent) captureState() (*Capture, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.cfg.Capture:
		return nil, errors.New("capture is off in this pod's config (Config.Capture)")
	case a.capErr != nil:
		return nil, fmt.Errorf("capture unavailable: %v", a.capErr)
	case a.capture == nil:
		return nil, errors.New("capture not started")
	}
	return a.capture, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// RunAgent is `meshtls-pod agent`: start, serve the socket, print ReadyLine
// to out, and run until ctx ends (SIGTERM in main).
func RunAgent(ctx context.Context, cfg Config, opts AgentOptions, sock string, out io.Writer) error {
	a := NewAgent(cfg, opts)
	if err := a.Start(); err != nil {
		return err
	}
	defer a.Close()
	if err := a.ServeSocket(sock); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, ReadyLine); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
