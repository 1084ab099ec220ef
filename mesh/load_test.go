package mesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadGood(t *testing.T) {
	m, err := Load("testdata")
	if err != nil {
		t.Fatalf("Load(testdata): %v", err)
	}
	if got := len(m.Workloads); got != 4 {
		t.Errorf("workloads = %d, want 4", got)
	}
	// Every served Istio version is normalised to v1.
	if dr := m.DestinationRules[0]; dr.APIVersion != "networking.istio.io/v1" || dr.Kind != "DestinationRule" {
		t.Errorf("DR TypeMeta = %+v", dr.TypeMeta)
	}
	if pa := m.PeerAuthentications[0]; pa.APIVersion != "security.istio.io/v1" {
		t.Errorf("PA TypeMeta = %+v", pa.TypeMeta)
	}
	if src := m.Sources["Gateway/istio-system/gw"]; src.Index != 7 || !strings.HasSuffix(src.File, "basic.yaml") {
		t.Errorf("Sources[Gateway] = %v", src)
	}
	c := m.Checks[1]
	if c.TLS == nil || c.TLS.SNI == nil || *c.TLS.SNI != "" {
		t.Errorf("sni: \"\" must be a non-nil empty string, got %+v", c.TLS)
	}
	if strings.Join(c.TLS.CA, ",") != "ingress,app,public" {
		t.Errorf("default CAs = %v", c.TLS.CA)
	}
	if m.Checks[0].TLS != nil {
		t.Errorf("omitted tls should stay nil")
	}
	omitted := mustParse(t, "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n---\n"+
		"apiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: {from: a, to: 'https://a:8443/', tls: {ca: [app]}}\n")
	if omitted.Checks[0].TLS.SNI != nil {
		t.Errorf("omitted sni must be nil")
	}
}

func TestLoadDirectoryAndEmptyDocs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", "---\n# only a comment\n---\napiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: {from: a, to: 'tcp://a:9000'}\n")
	write("a.yaml", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n---\n\n")
	write("ignored.txt", "not yaml: [")
	m, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(m.Checks) != 1 || m.Checks[0].Source.Index != 0 {
		t.Errorf("checks = %+v", m.Checks)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Errorf("missing file loaded")
	}
}

// Each bad bundle must fail with a message naming the document, the
// object and the field.
func TestValidationErrors(t *testing.T) {
	const a = "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {ports: [{name: http, port: 8080}]}\n---\n"
	const gwW = "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: igw, namespace: istio-system, labels: {istio: ingressgateway}}\nspec: {gateway: true}\n---\n"
	gw := func(server string) string {
		return a + "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - " + server + "\n"
	}
	check := func(spec string) string {
		return a + gwW + "apiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: " + spec + "\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of one problem line
	}{
		{"unknown apiVersion", "apiVersion: foo/v1\nkind: X\nmetadata: {name: x}\n",
			[]string{"(document 1) X", "kind", `unknown kind "X" for apiVersion foo/v1`, "meshtls reads: Check, ConfigMap, DaemonSet"}},
		{"unknown kind", "apiVersion: networking.istio.io/v1\nkind: Frobnicator\nmetadata: {name: x}\n",
			[]string{"(document 1) Frobnicator", "kind", "meshtls reads: Check, ConfigMap, DaemonSet, Deployment, DestinationRule, EndpointSlice, Endpoints, Gateway"}},
		{"known kind, unknown version", "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: x}\n",
			[]string{"(document 1) Gateway x", "apiVersion", `unknown apiVersion "networking.istio.io/v2" for kind Gateway`, "networking.istio.io/v1beta1"}},
		{"unsupported kind", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: ns1}\n",
			[]string{"(document 1) AuthorizationPolicy ns1/x", "kind", "not supported by meshtls", "remove the document"}},
		{"unsupported group", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n",
			[]string{"(document 1) HTTPRoute r", "kind", "Gateway API"}},
		{"unsupported kind in a List", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: deny, namespace: x}}\n",
			[]string{"(document 1, item 1) AuthorizationPolicy x/deny", "not supported"}},
		{"List item not an object", "apiVersion: v1\nkind: List\nitems: [3]\n",
			[]string{"(document 1, item 1)", "a list item must be an object"}},
		{"List unknown field", "apiVersion: v1\nkind: List\nitems: []\nbogus: 1\n",
			[]string{"(document 1) List", "bogus"}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", []string{"(document 1)", "apiVersion and kind are required"}},
		{"DR tls mode typo", a + drDoc("reviews", "default", "{host: reviews, trafficPolicy: {tls: {mode: STRICTT}}}"),
			[]string{"test.yaml (document 2) DestinationRule default/reviews: spec.trafficPolicy.tls.mode: unknown value \"STRICTT\" (allowed: DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL)"}},
		{"DR unknown field", a + drDoc("r", "default", "{host: r, trafficPolicy: {tls: {mode: SIMPLE, sniHost: x}}}"),
			[]string{"(document 2) DestinationRule default/r", "spec.trafficPolicy.tls.sniHost", `unknown field "sniHost"`}},
		{"DR snake_case accepted", a + drDoc("r", "default", "{host: r, traffic_policy: {tls: {mode: SIMPLE}}}"), nil},
		{"DR MUTUAL without cert", a + drDoc("r", "default", "{host: r, subsets: [{name: v1, trafficPolicy: {tls: {mode: MUTUAL}}}]}"),
			[]string{"(document 2) DestinationRule default/r", "spec.subsets[0].trafficPolicy.tls.clientCertificate", "MUTUAL"}},
		{"DR credentialName with files", a + drDoc("r", "default", "{host: r, trafficPolicy: {portLevelSettings: [{port: {number: 80}, tls: {mode: SIMPLE, credentialName: c, caCertificates: /x}}]}}"),
			[]string{"spec.trafficPolicy.portLevelSettings[0].tls", "credentialName is set"}},
		{"DR missing host", a + drDoc("r", "default", "{trafficPolicy: {}}"), []string{"DestinationRule default/r", "spec.host", "required"}},
		{"DR duplicate subset", a + drDoc("r", "default", "{host: r, subsets: [{name: v1}, {name: v1}]}"), []string{"spec.subsets[1].name", "duplicate subset"}},
		{"workload on a sidecar port", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: c}\nspec: {ports: [{name: tcp, port: 15001}]}\n",
			[]string{"(document 1) Workload default/c", "spec.ports[0].port", "port 15001 is used by Istio's sidecar"}},
		{"duplicate name", a + drDoc("r", "default", "{host: r}") + drDoc("r", "default", "{host: s}"),
			[]string{"(document 3) DestinationRule default/r", "metadata.name", "first defined in test.yaml (document 2)"}},
		{"Service type ExternalName outside the bundle", a + "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: example.com}\n",
			[]string{"(document 2) Service default/ext", "spec.externalName", "resolves outside the bundle", "hostnames: [example.com]"}},
		{"Service type unknown", a + "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: Frob}\n",
			[]string{"(document 2) Service default/ext", "spec.type", "allowed: ClusterIP, NodePort, LoadBalancer, ExternalName"}},
		{"Service field meshtls does not know", a + "---\napiVersion: v1\nkind: Service\nmetadata: {name: vip}\nspec: {clusterIP: 10.0.0.1, bogus: 1, selector: {app: a}, ports: [{name: http, port: 80}]}\n",
			[]string{"(document 2) Service default/vip", "spec.bogus", "unknown field"}},
		{"Service service-account annotation", a + "---\napiVersion: v1\nkind: Service\nmetadata: {name: sa, annotations: {alpha.istio.io/kubernetes-serviceaccounts: x}}\nspec: {selector: {app: a}, ports: [{name: http, port: 80}]}\n",
			[]string{"(document 2) Service default/sa", "metadata.annotations[alpha.istio.io/kubernetes-serviceaccounts]", "not supported"}},
		{"Service externalName", a + "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {externalName: example.com}\n",
			[]string{"(document 2) Service default/ext", "spec.externalName", "only with type: ExternalName"}},
		{"PA port level without selector", a + "---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {portLevelMtls: {8080: {mode: DISABLE}}}\n",
			[]string{"(document 2) PeerAuthentication default/p", "spec.portLevelMtls", "selector"}},
		{"PA mode typo", a + "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {mtls: {mode: strict}}\n",
			[]string{"spec.mtls.mode", `unknown value "strict" (allowed: UNSET, DISABLE, PERMISSIVE, STRICT)`}},
		{"metadata unknown field", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a, labes: {app: a}}\n",
			[]string{"Workload default/a", "metadata.labes", `unknown field "labes"`}},
		{"top-level unknown field", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspex: {host: a}\n",
			[]string{"DestinationRule default/a", "spex", "unknown field"}},
		{"workload unknown field", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {ports: [{name: http, port: 80, protocol: TCP}]}\n",
			[]string{"Workload default/a", "spec.ports[0].protocol", `unknown field "protocol" (allowed: appProtocol, name, port, serverFirst, tls)`}},
		{"workload bad type", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {sidecar: maybe}\n",
			[]string{"Workload default/a", "spec.sidecar", "expected bool"}},
		{"workload duplicate port", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {ports: [{port: 80}, {port: 80}]}\n",
			[]string{"spec.ports[1].port", "duplicate port 80"}},
		{"service unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetport: 8080}]}\n",
			[]string{"Service default/s", "spec.ports[0].targetport", "unknown field"}},
		{"service named targetPort missing", a + "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: a}, ports: [{port: 80, targetPort: web}]}\n",
			[]string{"(document 2) Service default/s", "spec.ports[0].targetPort", `named port "web"`}},
		{"secret missing key", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData: {tls.crt: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}\n",
			[]string{"Secret default/s", "data", "tls.key is required"}},
		{"gateway https without tls", gw("{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*']}"),
			[]string{"(document 2) Gateway default/g", "spec.servers[0].tls", "required for protocol HTTPS"}},
		{"gateway ISTIO_MUTUAL with credentialName", gw("{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: ISTIO_MUTUAL, credentialName: c}}"),
			[]string{"Gateway default/g", "spec.servers[0].tls.credentialName", "ISTIO_MUTUAL"}},
		{"gateway MUTUAL without certs", gw("{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: MUTUAL}}"),
			[]string{"spec.servers[0].tls.caCertificates", "required for mode MUTUAL"}},
		{"gateway http with tls", gw("{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*'], tls: {mode: SIMPLE, credentialName: c}}"),
			[]string{"spec.servers[0].tls", "plain-text HTTP"}},
		{"gateway http with redirect ok", gw("{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*'], tls: {httpsRedirect: true}}"), nil},
		{"gateway bad protocol", gw("{port: {number: 80, name: http, protocol: HTTPX}, hosts: ['*']}"),
			[]string{"spec.servers[0].port.protocol", `unknown value "HTTPX"`}},
		{"gateway server mode typo", gw("{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: PASSTRHOUGH}}"),
			[]string{"spec.servers[0].tls.mode", "allowed: PASSTHROUGH, SIMPLE"}},
		{"VS missing gateway", a + "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [a], gateways: [nope, mesh]}\n",
			[]string{"(document 2) VirtualService default/v", "spec.gateways[0]", "Gateway default/nope not found"}},
		{"VS missing subset", a + drDoc("a", "default", "{host: a, subsets: [{name: v1}]}") + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [a], http: [{route: [{destination: {host: a, subset: v2}}]}]}\n",
			[]string{"(document 3) VirtualService default/v", "spec.http[0].route[0].destination.subset", `subset "v2"`}},
		{"VS subset ok", a + drDoc("a", "default", "{host: a, subsets: [{name: v1}]}") + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [a], tcp: [{route: [{destination: {host: a, subset: v1}}]}]}\n", nil},
		{"VS tls route without sniHosts", a + "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [a], tls: [{match: [{port: 443}], route: [{destination: {host: a}}]}]}\n",
			[]string{"spec.tls[0].match[0].sniHosts", "required"}},
		{"check missing workload", check("{from: nobody, to: 'http://a:8080/'}"), []string{"(document 3) Check default/c", "spec.from", `"nobody" not found`}},
		{"check via not gateway", check("{from: a, via: a, to: 'http://a:8080/'}"), []string{"spec.via", "not a gateway"}},
		{"check via ok", check("{from: a, via: istio-system/igw, to: 'https://a.example.com/'}"), nil},
		{"check bad scheme", check("{from: a, to: 'ftp://a/'}"), []string{"spec.to", `unsupported scheme "ftp" (allowed: http, https, tcp, tls)`}},
		{"check unparsable URL", check("{from: a, to: 'http://a:80:80/%'}"), []string{"spec.to", "not a URL"}},
		{"check tcp without port", check("{from: a, to: 'tcp://a'}"), []string{"spec.to", "needs a port"}},
		{"workload appCA unknown", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {appCA: ingress, ports: [{name: https, port: 443, tls: true}]}\n",
			[]string{"(document 1) Workload default/x", "spec.appCA", `unknown CA "ingress"`, "app, public"}},
		{"workload appCA on a gateway", gwW + "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {appCA: public, gateway: true}\n",
			[]string{"(document 2) Workload default/x", "spec.appCA", "a gateway runs no app"}},
		{"workload appCA public", "apiVersion: meshtls.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {appCA: public, ports: [{name: https, port: 443, tls: true}]}\n", nil},
		{"check public CA", check("{from: a, to: 'https://a/', tls: {ca: [public]}}"), nil},
		{"check unknown CA", check("{from: a, to: 'https://a/', tls: {ca: [mesh, evil]}}"), []string{"spec.tls.ca[1]", `unknown CA "evil"`}},
		{"check bad clientCert", check("{from: a, to: 'https://a/', tls: {clientCert: corp}}"), []string{"spec.tls.clientCert", `unknown CA "corp"`, "mesh, ingress, app, client, untrusted, public"}},
		{"check SAN without CA", check("{from: a, to: 'https://a/', tls: {clientURI: 'spiffe://cluster.local/ns/default/sa/x'}}"), []string{"spec.tls.clientCert", "required with clientURI or clientDNS"}},
		{"check bad clientURI", check("{from: a, to: 'https://a/', tls: {clientCert: mesh, clientURI: not-a-uri}}"), []string{"spec.tls.clientURI", "absolute URI"}},
		{"check bad clientDNS", check("{from: a, to: 'https://a/', tls: {clientCert: client, clientDNS: 'a b'}}"), []string{"spec.tls.clientDNS", "DNS name"}},
		{"check bad version", check("{from: a, to: 'https://a/', tls: {minVersion: TLSv1.2}}"), []string{"spec.tls.minVersion", `unknown value "TLSv1.2"`, "TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3"}},
		{"check version range upside down", check("{from: a, to: 'https://a/', tls: {minVersion: TLSV1_3, maxVersion: TLSV1_2}}"), []string{"spec.tls.minVersion", "above maxVersion"}},
		{"check bad cipher", check("{from: a, to: 'https://a/', tls: {cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, TLS_AES_128_GCM_SHA256]}}"), []string{"spec.tls.cipherSuites[1]", "TLS 1.3-only"}},
		{"check empty alpn", check("{from: a, to: 'https://a/', tls: {alpn: ['']}}"), []string{"spec.tls.alpn[0]", "1-255 bytes"}},
		{"check serverFirst on http", check("{from: a, to: 'http://a/', serverFirst: true}"), []string{"spec.serverFirst", "only to tcp and tls"}},
		{"check bad hop version", check("{from: a, to: 'http://a/', expect: {hops: [{tlsVersion: '1.3'}]}}"), []string{"spec.expect.hops[0].tlsVersion", `unknown value "1.3"`}},
		{"check tls on http", check("{from: a, to: 'http://a/', tls: {sni: x}}"), []string{"spec.tls", "only to https and tls"}},
		{"check bad result", check("{from: a, to: 'http://a/', expect: {result: http-99}}"), []string{"spec.expect.result", `"http-99"`}},
		{"check bad wire", check("{from: a, to: 'http://a/', expect: {wire: [mtls, ssl]}}"), []string{"spec.expect.wire[1]", `unknown value "ssl"`}},
		{"check bad peer", check("{from: a, to: 'http://a/', expect: {peer: default/a}}"), []string{"spec.expect.peer", "SPIFFE"}},
		{"check peer subject", check("{from: a, to: 'http://a/', expect: {peer: 'CN=meshtls-client,O=meshtls'}}"), nil},
		{"check bad peer subject", check("{from: a, to: 'http://a/', expect: {peer: 'CN=x,O'}}"), []string{"spec.expect.peer", "certificate subject"}},
		{"check unknown field", check("{from: a, to: 'http://a/', expect: {status: 200}}"), []string{"spec.expect.status", `unknown field "status"`}},
		{"check good offer", check("{from: a, to: 'tls://a:8443', serverFirst: true, tls: {clientCert: mesh, clientURI: 'spiffe://cluster.local/ns/default/sa/x', clientDNS: x.example.com, minVersion: TLSV1_2, maxVersion: TLSV1_2, alpn: [h2], cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]}, expect: {result: fail, hops: [{tlsVersion: TLSv1.2, sni: none, alpn: [h2]}]}}"), nil},
		{"check good", check("{from: a, to: 'tls://a:8443', tls: {sni: '', ca: [app], clientCert: client}, expect: {result: http-503, wire: [mtls+tls], peer: none, reason: UF}}"), nil},
		{"invalid yaml", "apiVersion: v1\nkind: [\n", []string{"(document 1)", "invalid YAML"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yaml))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(line, w)
				}
				if ok {
					return
				}
			}
			t.Errorf("no problem line contains all of %q; got:\n%v", tc.want, err)
		})
	}
}

// All problems are collected, not just the first.
func TestValidationCollectsAll(t *testing.T) {
	y := drDoc("a", "default", "{host: a, trafficPolicy: {tls: {mode: BAD}}}") +
		drDoc("b", "default", "{host: b, bogus: 1}") +
		"---\napiVersion: meshtls.dev/v1alpha1\nkind: Check\nmetadata: {name: c}\nspec: {from: x, to: 'gopher://x'}\n"
	_, err := Parse("many.yaml", []byte(y))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) < 4 {
		t.Fatalf("want at least 4 problems, got %v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(ve.Problems) {
		t.Errorf("Error() has %d lines for %d problems", n, len(ve.Problems))
	}
}
