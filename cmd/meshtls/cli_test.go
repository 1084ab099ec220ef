package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshtls/meshtls/harness"
	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

// Unit tests: no Docker. They call execute as main does.

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = execute(args, &o, &e)
	return code, o.String(), e.String()
}

func writeBundle(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const podA = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  ports: [{name: http, port: 8080}]
`

func TestValidate(t *testing.T) {
	good := "testdata/two-pods.yaml"
	tests := []struct {
		name     string
		files    []string
		wantCode int
		// every string must appear in stderr (bad) or stdout (good)
		want []string
	}{
		{"good file", []string{good}, 0, []string{"two-pods.yaml: ok (2 workloads, 3 checks)"}},
		{"directory expands to its bundles", []string{"testdata"}, 0, []string{"two-pods.yaml: ok"}},
		{"a kubectl dump, unchanged", []string{"../../scenarios/testdata/16-cluster-shop.yaml"}, 0, []string{"16-cluster-shop.yaml: ok (6 workloads, 0 checks)"}},
		{"an unmodelled kind is refused", []string{writeBundle(t, "authz.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: deny, namespace: shop}}\n")}, 2,
			[]string{"(document 1, item 1) AuthorizationPolicy shop/deny: kind: not supported by meshtls"}},
		{"unknown kind", []string{writeBundle(t, "kind.yaml", podA+"---\napiVersion: meshtls.dev/v1alpha1\nkind: Frobnicator\nmetadata: {name: x}\n")}, 2,
			[]string{"(document 2)", "Frobnicator", "kind:", `unknown kind`}},
		{"unknown field", []string{writeBundle(t, "field.yaml", podA+"  bogus: 1\n")}, 2,
			[]string{"(document 1)", "Workload default/a", "spec.bogus", "unknown field"}},
		{"dangling reference", []string{writeBundle(t, "ref.yaml", podA+`---
apiVersion: meshtls.dev/v1alpha1
kind: Check
metadata: {name: c}
spec:
  from: nosuch
  to: http://a.default.svc.cluster.local:8080/
`)}, 2, []string{"(document 2)", "Check default/c", "spec.from", `"nosuch"`}},
		{"every file is reported, good ones too", []string{
			writeBundle(t, "one.yaml", podA+"  bogus: 1\n"),
			good,
			writeBundle(t, "two.yaml", podA+"  other: 1\n"),
		}, 2, []string{"one.yaml: invalid", "spec.bogus", "two.yaml: invalid", "spec.other", "2 of 3 files invalid"}},
		{"missing file", []string{"testdata/nope.yaml"}, 2, []string{"nope.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"validate"}, tt.files...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			where := out
			if tt.wantCode != 0 {
				where = errOut
			}
			for _, w := range tt.want {
				if !strings.Contains(where, w) {
					t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
				}
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	// A gateway with MUTUAL TLS: issued server cert + CA secrets, plus the
	// proxy's own workload cert. Private keys must never be printed.
	gw := "../../scenarios/testdata/08-gateway-mutual-no-client-cert.yaml"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, out, errOut string)
	}{
		{"gateway json", []string{"--proxy", "istio-system/istio-ingressgateway", gw}, 0, func(t *testing.T, out, _ string) {
			var doc map[string][]map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			for _, k := range []string{"listeners", "clusters", "routes", "secrets"} {
				if _, ok := doc[k]; !ok {
					t.Errorf("no %q key; keys: %v", k, keys(doc))
				}
			}
			if len(doc) != 4 {
				t.Errorf("keys %v, want exactly listeners, clusters, routes, secrets", keys(doc))
			}
			if len(doc["secrets"]) == 0 {
				t.Error("no secrets: the gateway needs its certificate")
			}
			withKey := 0
			for _, s := range doc["secrets"] {
				if tc, ok := s["tlsCertificate"].(map[string]any); ok {
					withKey++
					if pk, _ := json.Marshal(tc["privateKey"]); !strings.Contains(string(pk), "redacted") {
						t.Errorf("secret %v: private key %s, want it redacted", s["name"], pk)
					}
				}
			}
			if withKey == 0 {
				t.Error("no tlsCertificate secret to check redaction on")
			}
		}},
		{"sidecar yaml", []string{"-o", "yaml", "--proxy", "b", gw}, 0, func(t *testing.T, out, _ string) {
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, out)
			}
			if _, ok := doc["listeners"]; !ok {
				t.Errorf("no listeners in YAML output:\n%s", out)
			}
		}},
		{"unknown proxy", []string{"--proxy", "nosuch", gw}, 2, func(t *testing.T, _, errOut string) {
			if !strings.Contains(errOut, `--proxy "nosuch"`) {
				t.Errorf("stderr %q does not name the flag and value", errOut)
			}
		}},
		{"proxy without Envoy", []string{"--proxy", "outside/curl", gw}, 2, func(t *testing.T, _, errOut string) {
			if !strings.Contains(errOut, "no Envoy") {
				t.Errorf("stderr %q does not say the workload has no proxy", errOut)
			}
		}},
		{"no --proxy", []string{gw}, 2, func(t *testing.T, _, errOut string) {
			if !strings.Contains(errOut, "proxy") {
				t.Errorf("stderr %q does not name the missing flag", errOut)
			}
		}},
		{"bad -o", []string{"-o", "xml", "--proxy", "b", gw}, 2, nil},
		{"bad bundle", []string{"--proxy", "a", writeBundle(t, "bad.yaml", podA+"  bogus: 1\n")}, 2, func(t *testing.T, _, errOut string) {
			if !strings.Contains(errOut, "spec.bogus") {
				t.Errorf("stderr %q does not name the field", errOut)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"translate"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", code, tt.wantCode, errOut)
			}
			// The rule holds for every output: no key material, ever.
			if strings.Contains(out, "PRIVATE KEY") || strings.Contains(errOut, "PRIVATE KEY") {
				t.Fatal("output contains a private key")
			}
			if tt.check != nil {
				tt.check(t, out, errOut)
			}
		})
	}
}

// Bad input fails with exit 2 before Docker is asked anything: DOCKER_HOST
// points nowhere, so reaching the engine would give a different error.
func TestRunBadInput(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/meshtls-test.sock")
	t.Setenv("MESHTLS_ORACLE", "/nonexistent/meshtls-oracle")
	badKind := writeBundle(t, "kind.yaml", podA+"---\napiVersion: meshtls.dev/v1alpha1\nkind: Frobnicator\nmetadata: {name: x}\n")
	good := "testdata/two-pods.yaml"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown kind", []string{badKind}, `unknown kind "Frobnicator"`},
		{"one bad file among good ones", []string{good, badKind}, "(document 2)"},
		{"missing file", []string{"testdata/nope.yaml"}, "nope.yaml"},
		{"bad -o", []string{"-o", "xml", good}, `-o "xml"`},
		{"bad --parallel", []string{"--parallel", "0", good}, "--parallel"},
		{"report in a missing folder", []string{"--report", "/nonexistent/dir/r.html", good}, "--report"},
		{"no files", nil, "arg"},
		{"bad --control-plane", []string{"--control-plane", "envoy", good}, `--control-plane "envoy": want meshtls or istio`},
		{"--control-plane istio without the oracle", []string{"--control-plane", "istio", good}, "make oracle-build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"run", "-o", "json"}, tt.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", code, errOut)
			}
			if tt.name == "bad -o" { // -o xml asked for no JSON
				if out != "" {
					t.Errorf("stdout %q, want nothing", out)
				}
				return
			}
			// stdout is one JSON error object, so a CI step parsing it gets JSON.
			var got errorOutput
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || got.Error.ExitCode != 2 || !strings.Contains(got.Error.Message, tt.want) || dec.More() {
				t.Errorf("stdout %q (%v), want one JSON error object with exit code 2", out, err)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q lacks %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "Docker") {
				t.Errorf("stderr %q: Docker was contacted for bad input", errOut)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// untranslatable loads (every field and reference is valid) but cannot be
// translated: the MUTUAL gateway needs the client CA from its credential
// Secret, which has no ca.crt. Two gateway pods select the Gateway, so the
// problem is met twice and must be reported once.
const untranslatable = `apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: gw1, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {gateway: true}
---
apiVersion: meshtls.dev/v1alpha1
kind: Workload
metadata: {name: gw2, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {gateway: true}
---
apiVersion: v1
kind: Secret
metadata: {name: cred, namespace: istio-system}
type: kubernetes.io/tls
stringData:
  tls.crt: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
  tls.key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mutual, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: MUTUAL, credentialName: cred}
`

// validate translates as run does: a bundle run refuses is refused by
// validate with the same problem, naming the file and document.
func TestValidateIncludesTranslation(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/meshtls-test.sock")
	f := writeBundle(t, "untranslatable.yaml", untranslatable)
	want := []string{"untranslatable.yaml (document 3) Secret istio-system/cred", "no ca.crt"}
	code, _, vErr := run(t, "validate", f)
	if code != 2 {
		t.Fatalf("validate: exit %d, want 2\n%s", code, vErr)
	}
	code, _, rErr := run(t, "run", f)
	if code != 2 {
		t.Fatalf("run: exit %d, want 2\n%s", code, rErr)
	}
	for _, out := range []string{vErr, rErr} {
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
		if n := strings.Count(out, "no ca.crt"); n != 1 {
			t.Errorf("the problem is reported %d times, want once:\n%s", n, out)
		}
		if strings.Contains(out, "Docker") {
			t.Errorf("Docker was contacted for bad input:\n%s", out)
		}
	}
}

// JUnit: one testsuite per scenario, one testcase per check, the trace in
// the failure body.
func TestJUnitReport(t *testing.T) {
	scs, err := harness.LoadScenarios("testdata/two-pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results := []*trace.Result{
		{Scenario: "two-pods", Name: "a-to-b", Verdict: outcome.Pass, Result: outcome.OK, DurationMS: 250},
		{Scenario: "two-pods", Name: "wrong", Verdict: outcome.Fail, Result: outcome.OK, Mismatches: []string{"wire: hop 1 expected plaintext, observed mtls"}},
		{Scenario: "two-pods", Name: "b-to-a", Verdict: outcome.Report, Result: outcome.OK, DurationMS: 1250},
	}
	path := filepath.Join(t.TempDir(), "out.xml")
	if err := writeJUnit(path, scs, results, Summary{DurationMS: 1500}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Tests int    `xml:"tests,attr"`
			Time  string `xml:"time,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Time    string `xml:"time,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if got.Tests != 3 || got.Failures != 1 || len(got.Suites) != 1 || got.Suites[0].Name != "two-pods" || len(got.Suites[0].Cases) != 3 {
		t.Fatalf("want 1 suite two-pods with 3 cases and 1 failure, got:\n%s", b)
	}
	if s := got.Suites[0]; s.Time != "1.500" || s.Cases[0].Time != "0.250" || s.Cases[2].Time != "1.250" {
		t.Errorf("times: suite %q, cases %q and %q; want 1.500, 0.250, 1.250 (each check's duration)", s.Time, s.Cases[0].Time, s.Cases[2].Time)
	}
	f := got.Suites[0].Cases[1].Failure
	if f == nil || !strings.Contains(f.Message, "expected plaintext") || !strings.Contains(f.Body, "check wrong (scenario two-pods): FAIL") {
		t.Fatalf("failure of check wrong lacks its mismatch or trace:\n%s", b)
	}
	if code, _, errOut := run(t, "run", "--junit", "/nonexistent/dir/out.xml", "testdata/two-pods.yaml"); code != 2 || !strings.Contains(errOut, "--junit") {
		t.Errorf("--junit into a missing folder: exit %d, %q; want 2 naming --junit", code, errOut)
	}
}

// -o json on a bundle problem: the error object lists each problem with
// its file, document and field.
func TestJSONErrorProblems(t *testing.T) {
	bundle := writeBundle(t, "field.yaml", podA+"  bogus: 1\n")
	code, out, _ := run(t, "run", "-o", "json", bundle)
	var got errorOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 2 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if p := got.Error.Problems; len(p) != 1 || p[0].Field != "spec.bogus" || p[0].Document != 1 || p[0].File != bundle || p[0].Kind != "Workload" {
		t.Errorf("problems %+v, want spec.bogus of Workload in document 1 of %s", p, bundle)
	}
}

func TestValidateJSON(t *testing.T) {
	badFile := writeBundle(t, "field.yaml", podA+"  bogus: 1\n")
	code, out, _ := run(t, "validate", "-o", "json", "testdata/two-pods.yaml", badFile)
	var got validateOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 2 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if len(got.Files) != 2 || !got.Files[0].Valid || got.Files[0].Checks != 3 || got.Files[1].Valid ||
		len(got.Files[1].Problems) != 1 || got.Files[1].Problems[0].Kind != "Workload" || got.Summary.Invalid != 1 {
		t.Fatalf("got %+v", got)
	}
	if code, out, _ := run(t, "validate", "-o", "json", "testdata/two-pods.yaml"); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("valid file: exit %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := run(t, args...)
		if code != 0 || !strings.HasPrefix(out, "meshtls ") || !strings.Contains(out, "\nenvoy ") || !strings.Contains(out, "\nistio   1.") {
			t.Errorf("%q: exit %d\n%s", args, code, out)
		}
	}
}

// A field accepted without translation is named on stderr; the bundle is valid.
func TestValidatePrintsNotices(t *testing.T) {
	f := writeBundle(t, "notice.yaml", podA+`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec:
  host: a
  trafficPolicy: {loadBalancer: {localityLbSetting: {enabled: true}}}
`)
	code, out, errOut := run(t, "validate", f)
	if code != 0 || !strings.Contains(out, "notice.yaml: ok") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, w := range []string{"notice: ", "(document 2) DestinationRule default/a: spec.trafficPolicy.loadBalancer.localityLbSetting: accepted, not translated"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
}

// Two Gateways claiming one host and port are valid, as in Istio: the older
// keeps it and the newer server is named in a warning (istioctl analyze
// IST0145), not refused.
func TestValidateWarnsGatewayConflict(t *testing.T) {
	gw := func(name, ts, mode string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: istio-system, creationTimestamp: '" + ts + "'}\n" +
			"spec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: {mode: " + mode + ", credentialName: b-cred}\n"
	}
	f := writeBundle(t, "conflict.yaml", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: ingress, namespace: istio-system, labels: {istio: ingressgateway}}\nspec: {gateway: true}\n"+
		gw("z-old", "2024-01-01T00:00:00Z", "SIMPLE")+gw("a-new", "2024-06-01T00:00:00Z", "MUTUAL"))
	code, out, errOut := run(t, "validate", f)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if want := "warning: " + f + " (document 3) Gateway istio-system/a-new: spec.servers[0]: conflict with Gateway istio-system/z-old"; !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
}
