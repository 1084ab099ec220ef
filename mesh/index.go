package mesh

// index answers Endpoints and ServiceByHost in O(1) instead of a scan of
// every workload/service per question: translation asks them per cluster,
// which made a sidecar's config O(services x workloads).
type index struct {
	ws     []*Workload
	ss     []*Service
	eps    map[*Service][]*Workload
	byName map[string]*Service // namespace/name
}

func sameSlice[T any](a, b []*T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// idx returns the index for m's current Workloads and Services, rebuilding
// it when either slice was replaced (the harness's Apply swaps Workloads).
func (m *Mesh) idx() *index {
	if ix := m.index.Load(); ix != nil && sameSlice(ix.ws, m.Workloads) && sameSlice(ix.ss, m.Services) {
		return ix
	}
	ix := &index{ws: m.Workloads, ss: m.Services, eps: make(map[*Service][]*Workload, len(m.Services)), byName: make(map[string]*Service, len(m.Services))}
	for _, s := range m.Services {
		if _, dup := ix.byName[s.Namespace+"/"+s.Name]; !dup {
			ix.byName[s.Namespace+"/"+s.Name] = s
		}
		ix.eps[s] = m.scanEndpoints(s)
	}
	m.index.Store(ix)
	return ix
}
