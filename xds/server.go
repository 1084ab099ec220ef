package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/meshtls/meshtls/translate"
)

// Server serves each proxy (xDS node ID = workload ID "namespace/name") the
// exact Resources last Set for it over ADS, and tracks what every proxy has
// ACKed or NACKed so callers can wait until a proxy really runs a version.
//
// It is go-control-plane's snapshot cache (ADS mode) plus its
// state-of-the-world and delta ADS servers; the tracking is done in server
// callbacks (track.go).
type Server struct {
	cache   cachev3.SnapshotCache
	secrets cachev3.SnapshotCache // SDS only; see NewServer
	xds     serverv3.Server
	grpc    *grpc.Server
	tracker *tracker
	cancel  context.CancelFunc

	mu    sync.Mutex
	nodes map[string]*nodeSnapshot
	// first is the sequence number below every version this server makes
	// (see AfterVersionsOf).
	first uint64
}

// nodeSnapshot is what Set last gave one node.
type nodeSnapshot struct {
	mu      sync.Mutex // serialises Set per node
	seq     uint64
	hash    string
	version string
	// Per xDS type: the sequence number of the Set that last changed it, and
	// its content hash then. A type keeps its version while its content is
	// unchanged, so the cache (which answers a watch when the type's version
	// differs from what the proxy has) sends only the types that changed.
	typeSeq  map[string]uint64
	typeHash map[string]string
}

type config struct {
	callbacks Callbacks
	prev      *Server
}

// Option configures a Server.
type Option func(*config)

// WithCallbacks registers optional event hooks (connect, ACK, NACK...).
func WithCallbacks(c Callbacks) Option { return func(cfg *config) { cfg.callbacks = c } }

// AfterVersionsOf makes every version the new server sends higher than any
// prev sent. A proxy that reconnects to a restarted server asks with the
// version it runs; the cache answers only when that differs from its own,
// so a new server counting from 1 again would never answer (and never see
// an ACK from) a proxy that already ran version 1 of the old one, and a
// proxy holding an older config under a reused version would keep it.
func AfterVersionsOf(prev *Server) Option { return func(cfg *config) { cfg.prev = prev } }

// NewServer returns a Server with no snapshots; call Serve to accept proxies.
func NewServer(opts ...Option) *Server {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		// ADS=true: the cache only answers once a request names every
		// resource of that type in the snapshot, which keeps Envoy's view
		// consistent (see cachev3.NewSnapshotCache).
		cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil),
		// Secrets from a cache that answers any subset of names: Envoy asks
		// for the clusters' secrets before it fetches listeners (clusters
		// warm first), so a request naming every secret of the snapshot,
		// which ADS mode waits for, would come only after Envoy's 15 s
		// initial-fetch timeout when a listener has a secret of its own
		// (a gateway's credential).
		secrets: cachev3.NewSnapshotCache(false, cachev3.IDHash{}, nil),
		tracker: newTracker(cfg.callbacks),
		cancel:  cancel,
		nodes:   map[string]*nodeSnapshot{},
	}
	if cfg.prev != nil {
		s.first = cfg.prev.lastSeq()
	}
	mux := &cachev3.MuxCache{
		Classify: func(r *cachev3.Request) string { return cacheFor(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string {
			return cacheFor(r.GetTypeUrl())
		},
		Caches: map[string]cachev3.Cache{"config": s.cache, "secrets": s.secrets},
	}
	s.xds = serverv3.NewServer(ctx, mux, s.tracker.callbacks())
	s.grpc = grpc.NewServer()
	// The ADS service carries both StreamAggregatedResources (state of the
	// world) and DeltaAggregatedResources (incremental).
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(s.grpc, s.xds)
	return s
}

// lastSeq is the highest sequence number this server has used.
func (s *Server) lastSeq() uint64 {
	s.mu.Lock()
	nodes := make([]*nodeSnapshot, 0, len(s.nodes))
	for _, ns := range s.nodes {
		nodes = append(nodes, ns)
	}
	s.mu.Unlock()
	last := s.first
	for _, ns := range nodes {
		ns.mu.Lock()
		last = max(last, ns.seq)
		ns.mu.Unlock()
	}
	return last
}

// Serve accepts ADS streams on lis until Stop is called.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop closes every stream and listener at once. Proxies keep running their
// last configuration (Envoy keeps it when the control plane goes away).
func (s *Server) Stop() {
	s.cancel()
	s.grpc.Stop()
}

// ListenUnix listens on a Unix socket at path, removing a stale socket left by
// an earlier run and making it connectable by any uid: Envoy runs as uid 1337
// in its container while the test process usually runs as root or the user.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("xds: create socket directory for %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("xds: %s exists and is not a socket; remove it or choose another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("xds: remove stale socket %s: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("xds: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		lis.Close()
		return nil, fmt.Errorf("xds: chmod %s so Envoy (uid 1337) can connect: %w", path, err)
	}
	return lis, nil
}

// typeOrder fixes the order in which types are hashed and reported.
var typeOrder = []string{
	resource.ListenerType, resource.ClusterType, resource.RouteType,
	resource.EndpointType, resource.SecretType,
}

// Set makes res the complete configuration of node and returns its version.
// Setting the same content again returns the current version and sends
// nothing. The snapshot must be consistent: every route and endpoint set
// referenced by a listener or cluster is present, and nothing else.
//
// Versions are per type: a type whose content did not change keeps the
// version it had, so the proxy is sent only the types that changed (a
// listener-only change is one LDS response, not five re-applied types).
// The returned version names the whole snapshot for Wait; TypeVersions
// gives the version each type carries on the wire and in Envoy's config dump.
func (s *Server) Set(node string, res *translate.Resources) (string, error) {
	if node == "" {
		return "", errors.New("xds: Set needs a node ID (workload ID namespace/name)")
	}
	if res == nil {
		res = &translate.Resources{}
	}
	byType := map[string][]types.Resource{
		resource.ListenerType: toResources(res.Listeners),
		resource.ClusterType:  toResources(res.Clusters),
		resource.RouteType:    toResources(res.Routes),
		resource.EndpointType: toResources(res.Endpoints),
		resource.SecretType:   toResources(res.Secrets),
	}
	typeHashes, total, err := hashResources(byType)
	if err != nil {
		return "", fmt.Errorf("xds: node %s: %w", node, err)
	}
	s.mu.Lock()
	ns := s.nodes[node]
	if ns == nil {
		ns = &nodeSnapshot{}
		s.nodes[node] = ns
	}
	s.mu.Unlock()

	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.version != "" && ns.hash == total {
		return ns.version, nil
	}
	seq := max(ns.seq, s.first) + 1
	version := strconv.FormatUint(seq, 10)
	typeSeq := make(map[string]uint64, len(typeOrder))
	for _, t := range typeOrder {
		typeSeq[t] = seq
		if old, ok := ns.typeSeq[t]; ok && ns.typeHash[t] == typeHashes[t] {
			typeSeq[t] = old // unchanged: same version, so the cache sends nothing
		}
	}
	snap, err := cachev3.NewSnapshot(version, byType)
	if err != nil {
		return "", fmt.Errorf("xds: node %s: build snapshot: %w", node, err)
	}
	for _, t := range typeOrder {
		snap.Resources[cachev3.GetResponseType(t)].Version = strconv.FormatUint(typeSeq[t], 10)
	}
	if err := snap.Consistent(); err != nil {
		return "", fmt.Errorf("xds: node %s: inconsistent resources (a listener or cluster references a route/endpoint set that is missing, or one is unreferenced): %w", node, err)
	}
	// Envoy always subscribes to LDS and CDS (wildcard) and ACKs even an
	// empty answer; RDS/EDS/SDS are requested only for names it references,
	// so they are only expected when non-empty.
	required := map[string]uint64{}
	for _, t := range typeOrder {
		if t == resource.ListenerType || t == resource.ClusterType || len(byType[t]) > 0 {
			required[t] = typeSeq[t]
		}
	}
	// Register the version before the cache can send it, so the tracker
	// knows what to expect when the response and its ACK come back.
	s.tracker.expect(node, version, required, typeSeq)
	secrets, err := cachev3.NewSnapshot(version, map[string][]types.Resource{resource.SecretType: byType[resource.SecretType]})
	if err != nil {
		return "", fmt.Errorf("xds: node %s: build snapshot: %w", node, err)
	}
	secrets.Resources[cachev3.GetResponseType(resource.SecretType)].Version = strconv.FormatUint(typeSeq[resource.SecretType], 10)
	if err := s.secrets.SetSnapshot(context.Background(), node, secrets); err != nil {
		return "", fmt.Errorf("xds: node %s: set snapshot: %w", node, err)
	}
	if err := s.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		return "", fmt.Errorf("xds: node %s: set snapshot: %w", node, err)
	}
	ns.seq = seq
	ns.version = version
	ns.hash = total
	ns.typeSeq, ns.typeHash = typeSeq, typeHashes
	return version, nil
}

// Wait blocks until node has ACKed, for every type in that version's
// snapshot, the type's version in it (or a later one). A type the Set left
// unchanged is satisfied by the ACK it already had, so a push where nothing
// changed returns at once. It fails at once when node NACKs a type at the
// version the snapshot carries, with Envoy's message, and at ctx's deadline
// with what node last ACKed.
func (s *Server) Wait(ctx context.Context, node, version string) error {
	return s.tracker.wait(ctx, node, version)
}

// Push sets the resources of every node and waits until every node runs
// them. Errors of all nodes are joined, in node order.
func (s *Server) Push(ctx context.Context, byNode map[string]*translate.Resources) error {
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	versions := make([]string, len(nodes))
	for i, n := range nodes {
		v, err := s.Set(n, byNode[n])
		if err != nil {
			return err
		}
		versions[i] = v
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { errs[i] = s.Wait(ctx, nodes[i], versions[i]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// LastACKed reports, per xDS type (LDS, CDS, RDS, EDS, SDS), the version node
// last ACKed. Types never ACKed are absent; nil if the node is unknown.
// Versions are per type (see Set): CDS may be at "1" while LDS is at "7".
func (s *Server) LastACKed(node string) map[string]string {
	return s.tracker.lastACKed(node)
}

// TypeVersions reports, per xDS type (LDS, CDS, RDS, EDS, SDS), the version
// that type carries in snapshot version of node: what Envoy's config dump
// shows as version_info for it once the proxy runs that snapshot. Nil if
// the version is unknown (never returned by Set, or among the oldest
// versions no longer kept).
func (s *Server) TypeVersions(node, version string) map[string]string {
	return s.tracker.typeVersions(node, version)
}

// cacheFor names the cache that answers an xDS type.
func cacheFor(typeURL string) string {
	if typeURL == resource.SecretType {
		return "secrets"
	}
	return "config"
}

func toResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, 0, len(in))
	for _, r := range in {
		out = append(out, r)
	}
	return out
}

// hashResources returns a content hash per type and over all types. Resource
// order does not matter: Envoy sees a set of named resources.
func hashResources(byType map[string][]types.Resource) (map[string]string, string, error) {
	opts := proto.MarshalOptions{Deterministic: true}
	all := sha256.New()
	per := map[string]string{}
	for _, t := range typeOrder {
		var items []string
		for _, r := range byType[t] {
			b, err := opts.Marshal(r)
			if err != nil {
				return nil, "", fmt.Errorf("marshal %s %q: %w", shortType(t), cachev3.GetResourceName(r), err)
			}
			sum := sha256.Sum256(b)
			items = append(items, cachev3.GetResourceName(r)+"\x00"+hex.EncodeToString(sum[:]))
		}
		sort.Strings(items)
		h := sha256.New()
		for _, it := range items {
			h.Write([]byte(it))
			h.Write([]byte{0})
		}
		per[t] = hex.EncodeToString(h.Sum(nil))
		all.Write([]byte(t + "=" + per[t] + "\n"))
	}
	return per, hex.EncodeToString(all.Sum(nil)), nil
}
