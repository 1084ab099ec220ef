package mesh

import (
	"strings"
	"testing"
)

// Fields that cannot change TLS or reachability and are not translated are
// accepted, each named in a notice; fields that are translated get none.
func TestNotices(t *testing.T) {
	m := mustParse(t, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec:
  host: b
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {enabled: true}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 80}
      outlierDetection: {consecutiveErrors: 2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: [b]
  http:
  - retries: {attempts: 2, retryRemoteLocalities: true}
    timeout: 5s
    route: [{destination: {host: b}}]
`)
	var got []string
	for _, n := range m.Notices {
		got = append(got, n.String())
	}
	want := []string{
		"DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting: accepted, not translated",
		"DestinationRule default/r: spec.trafficPolicy.portLevelSettings[0].outlierDetection.consecutiveErrors: accepted, not translated: deprecated",
		"VirtualService default/v: spec.http[0].retries.retryRemoteLocalities: accepted, not translated",
	}
	if len(got) != len(want) {
		t.Fatalf("notices = %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) || !strings.Contains(got[i], "(document ") {
			t.Errorf("notice %d = %q, want it to contain %q and the document", i, got[i], w)
		}
	}
}
