package crosscheck

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

// TestIstioConfigPrints: every type istiod's config names for the shipped
// bundles is registered (types.go), so `meshtls oracle --istio-config`
// prints every proxy of them (an Any of an unknown type fails to print).
func TestIstioConfigPrints(t *testing.T) {
	oracle := oracleForTest(t)
	var bundles []*Bundle
	for _, f := range shippedBundles(t) {
		b, err := LoadBundle(f)
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
	}
	_, cfgs, err := Generate(context.Background(), oracle, bundles)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cfgs {
		for id, res := range c.Proxies {
			all := slices.Concat(toMessages(res.Listeners), toMessages(res.Clusters), toMessages(res.Routes), toMessages(res.Endpoints))
			for _, m := range all {
				if _, err := protojson.Marshal(m); err != nil {
					t.Errorf("%s, proxy %s: %v (register the type in crosscheck/types.go)", bundles[i].Name, id, err)
				}
			}
		}
	}
}
