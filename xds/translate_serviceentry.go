package xds

// serviceEntryTargets lists the ports of the ServiceEntries visible from ns.
func (b *builder) serviceEntryTargets(ns string) []*target {
	for _, se := range b.m.ServiceEntriesFor(ns) {
		b.unsupported("ServiceEntry "+se.Namespace+"/"+se.Name, "ServiceEntry")
	}
	return nil
}
