package certs

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Store caches the credentials issued from a Set so they stay the same across
// xDS pushes: a workload keeps its certificate (and serial) until a test
// rotates or replaces it explicitly. It is safe for concurrent use.
type Store struct {
	set *Set

	mu        sync.Mutex
	workloads map[string]*KeyPair // "ns/sa"
	servers   map[string]*KeyPair // ingress CA, by name
	apps      map[string]*KeyPair // app CA, by name
	publics   map[string]*KeyPair // public CA, by name
	clients   map[string]*KeyPair // by CA name
	chosen    map[string]*KeyPair // client certificates with chosen SANs, by "ca|uri|dns"
	replaced  uint64              // counts RotateWorkload and SetWorkload calls
}

// NewStore returns an empty store issuing from set.
func NewStore(set *Set) *Store {
	return &Store{
		set:       set,
		workloads: map[string]*KeyPair{},
		servers:   map[string]*KeyPair{},
		apps:      map[string]*KeyPair{},
		publics:   map[string]*KeyPair{},
		clients:   map[string]*KeyPair{},
		chosen:    map[string]*KeyPair{},
	}
}

// Set returns the CAs the store issues from.
func (s *Store) Set() *Set { return s.set }

func workloadKey(ns, sa string) string { return ns + "/" + sa }

// Workload returns the mesh identity of ns/sa, issuing it on first use.
func (s *Store) Workload(ns, sa string) (*KeyPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kp, ok := s.workloads[workloadKey(ns, sa)]; ok {
		return kp, nil
	}
	return s.issueWorkloadLocked(ns, sa)
}

// RotateWorkload issues a new identity for ns/sa (new key and serial) and
// makes it the cached one. Callers push it to Envoy themselves.
func (s *Store) RotateWorkload(ns, sa string) (*KeyPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaced++
	return s.issueWorkloadLocked(ns, sa)
}

// Replaced counts the identities replaced so far (RotateWorkload,
// SetWorkload). A push compares it with the count it last saw: a replaced
// identity changes the secrets a proxy is served although no config did.
func (s *Store) Replaced() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaced
}

func (s *Store) issueWorkloadLocked(ns, sa string) (*KeyPair, error) {
	ca, err := s.ca(MeshCA)
	if err != nil {
		return nil, err
	}
	kp, err := ca.IssueWorkload(ns, sa)
	if err != nil {
		return nil, err
	}
	s.workloads[workloadKey(ns, sa)] = kp
	return kp, nil
}

// SetWorkload replaces the cached identity of ns/sa, e.g. with an expired or
// untrusted certificate for a negative test. A nil kp forgets the cached one,
// so the next Workload call issues a fresh certificate.
func (s *Store) SetWorkload(ns, sa string, kp *KeyPair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaced++
	if kp == nil {
		delete(s.workloads, workloadKey(ns, sa))
		return
	}
	s.workloads[workloadKey(ns, sa)] = kp
}

// Server returns the gateway server certificate called name (typically a
// Gateway credentialName), issued from the ingress CA for dnsNames on first
// use. Asking again for the same name with other DNS names is an error,
// since the cached certificate would not match them.
func (s *Store) Server(name string, dnsNames []string) (*KeyPair, error) {
	return s.server(s.servers, IngressCA, name, dnsNames)
}

// AppServer is Server for apps that terminate TLS themselves: issued from the
// app CA, cached by name.
func (s *Store) AppServer(name string, dnsNames []string) (*KeyPair, error) {
	return s.server(s.apps, AppCA, name, dnsNames)
}

// PublicServer is AppServer issued from the public CA, whose root the pods'
// OS trust store holds (an external site with a publicly trusted
// certificate), cached by name apart from AppServer's.
func (s *Store) PublicServer(name string, dnsNames []string) (*KeyPair, error) {
	return s.server(s.publics, PublicCA, name, dnsNames)
}

func (s *Store) server(cache map[string]*KeyPair, caName, name string, dnsNames []string) (*KeyPair, error) {
	if name == "" {
		return nil, fmt.Errorf("certs: %s server certificate needs a non-empty name", caName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kp, ok := cache[name]; ok {
		if !slices.Equal(kp.Cert.DNSNames, dnsNames) {
			return nil, fmt.Errorf("certs: %s server certificate %q was issued for [%s], now asked for [%s]; use a distinct name per set of hosts",
				caName, name, strings.Join(kp.Cert.DNSNames, " "), strings.Join(dnsNames, " "))
		}
		return kp, nil
	}
	ca, err := s.ca(caName)
	if err != nil {
		return nil, err
	}
	kp, err := ca.IssueServer(dnsNames)
	if err != nil {
		return nil, fmt.Errorf("certs: %s server certificate %q: %w", caName, name, err)
	}
	cache[name] = kp
	return kp, nil
}

// Client returns the client certificate (CN "meshtls-client") issued from
// caName, which must be "client" or "untrusted", issuing it on first use.
func (s *Store) Client(caName string) (*KeyPair, error) {
	if caName != ClientCA && caName != UntrustedCA {
		return nil, fmt.Errorf("certs: client certificate from CA %q: valid CAs are %q and %q", caName, ClientCA, UntrustedCA)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kp, ok := s.clients[caName]; ok {
		return kp, nil
	}
	ca, err := s.ca(caName)
	if err != nil {
		return nil, err
	}
	kp, err := ca.IssueClient(ClientCommonName)
	if err != nil {
		return nil, err
	}
	s.clients[caName] = kp
	return kp, nil
}

// ClientWithSAN returns a client certificate (CN "meshtls-client") issued
// from any CA of the set with the given URI and/or DNS SAN, issuing it on
// first use: a check's client can then claim any identity from any CA.
func (s *Store) ClientWithSAN(caName, uri, dns string) (*KeyPair, error) {
	var opts []Option
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("certs: client URI SAN %q is not an absolute URI", uri)
		}
		opts = append(opts, WithURIs(u))
	}
	if dns != "" {
		opts = append(opts, WithDNSNames(dns))
	}
	key := caName + "|" + uri + "|" + dns
	s.mu.Lock()
	defer s.mu.Unlock()
	if kp, ok := s.chosen[key]; ok {
		return kp, nil
	}
	ca, err := s.ca(caName)
	if err != nil {
		return nil, err
	}
	kp, err := ca.IssueClient(ClientCommonName, opts...)
	if err != nil {
		return nil, err
	}
	s.chosen[key] = kp
	return kp, nil
}

func (s *Store) ca(name string) (*CA, error) {
	if s.set == nil {
		return nil, fmt.Errorf("certs: store has no CA set; create it with NewStore(set) where set comes from NewSet")
	}
	return s.set.ByName(name)
}
