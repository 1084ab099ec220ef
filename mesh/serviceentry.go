package mesh

import (
	networking "istio.io/client-go/pkg/apis/networking/v1"
)

// ServiceEntry: the entries visible from a namespace.

// ServiceEntriesFor lists the ServiceEntries visible from clientNS.
func (m *Mesh) ServiceEntriesFor(clientNS string) []*networking.ServiceEntry {
	var out []*networking.ServiceEntry
	for _, se := range m.ServiceEntries {
		if exportedTo(se.Namespace, se.Spec.GetExportTo(), clientNS) {
			out = append(out, se)
		}
	}
	return out
}
