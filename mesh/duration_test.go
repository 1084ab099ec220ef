package mesh

import (
	"strings"
	"testing"
	"time"
)

// Go-style durations are what Istio reads (jsonpb, time.ParseDuration);
// the CRDs' 1ms minimum applies except where they set none.
func TestDurationsAsIstio(t *testing.T) {
	const a = "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {ports: [{name: http, port: 8080}]}\n"
	vs := func(http string) string {
		return a + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [a], http: [" + http + "]}\n"
	}
	m := mustParse(t, vs("{timeout: 1h30m, retries: {attempts: 2, perTryTimeout: 250ms}, corsPolicy: {allowOrigins: [{exact: 'https://x.example'}], maxAge: '24h'}, route: [{destination: {host: a}}]}")+
		drDoc("a", "default", "{host: a, trafficPolicy: {connectionPool: {tcp: {connectTimeout: 1.5s, idleTimeout: 0s}}, outlierDetection: {interval: 2m}}}"))
	h := m.VirtualServices[0].Spec.GetHttp()[0]
	for name, got := range map[string]time.Duration{
		"timeout":       h.GetTimeout().AsDuration(),
		"perTryTimeout": h.GetRetries().GetPerTryTimeout().AsDuration(),
		"maxAge":        h.GetCorsPolicy().GetMaxAge().AsDuration(),
	} {
		want := map[string]time.Duration{"timeout": 90 * time.Minute, "perTryTimeout": 250 * time.Millisecond, "maxAge": 24 * time.Hour}[name]
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	tp := m.DestinationRules[0].Spec.GetTrafficPolicy()
	if got := tp.GetConnectionPool().GetTcp().GetConnectTimeout().AsDuration(); got != 1500*time.Millisecond {
		t.Errorf("connectTimeout = %v", got)
	}
	if got := tp.GetOutlierDetection().GetInterval().AsDuration(); got != 2*time.Minute {
		t.Errorf("interval = %v", got)
	}

	for _, tc := range []struct{ name, yaml, field, msg string }{
		{"no unit", vs("{timeout: '5', route: [{destination: {host: a}}]}"), "spec.http[0].timeout", `invalid duration "5"`},
		{"bad unit", vs("{corsPolicy: {maxAge: 1d}, route: [{destination: {host: a}}]}"), "spec.http[0].corsPolicy.maxAge", `invalid duration "1d": write a number with a unit`},
		{"number", vs("{timeout: 5, route: [{destination: {host: a}}]}"), "spec.http[0].timeout", "expected a duration string, got a number"},
		{"below 1ms", vs("{timeout: 0s, route: [{destination: {host: a}}]}"), "spec.http[0].timeout", "at least 1ms"},
		{"negative", a + drDoc("a", "default", "{host: a, trafficPolicy: {connectionPool: {tcp: {idleTimeout: -1s}}}}"), "spec.trafficPolicy.connectionPool.tcp.idleTimeout", "must not be negative"},
		{"subset", a + drDoc("a", "default", "{host: a, subsets: [{name: v1, trafficPolicy: {outlierDetection: {baseEjectionTime: 30 s}}}]}"), "spec.subsets[0].trafficPolicy.outlierDetection.baseEjectionTime", "invalid duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name %s with %q", err, tc.field, tc.msg)
			}
		})
	}
}
