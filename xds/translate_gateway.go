package xds

func (b *builder) buildGateway() {
	b.unsupported("Workload "+b.proxy.ID(), "spec.gateway")
}
