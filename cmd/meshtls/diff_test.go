package main

import (
	"strings"
	"testing"

	"github.com/meshtls/meshtls/harness/trace"
	"github.com/meshtls/meshtls/outcome"
)

func TestCompare(t *testing.T) {
	r := func(name string, result outcome.Result, status int, wire ...outcome.Wire) *trace.Result {
		return &trace.Result{Name: name, From: "legacy/sleep", Dest: "b.shop:8080", Result: result, Status: status, Wire: wire, Peer: outcome.PeerNone}
	}
	before := []*trace.Result{r("same", outcome.OK, 200, outcome.MTLS), r("broke", outcome.OK, 200, outcome.Plaintext), r("wire", outcome.OK, 200, outcome.Plaintext), r("fixed", outcome.Reset, 0, outcome.Plaintext), r("gone", outcome.OK, 200, outcome.MTLS)}
	after := []*trace.Result{r("same", outcome.OK, 200, outcome.MTLS), r("broke", outcome.Reset, 0, outcome.Plaintext), r("wire", outcome.OK, 200, outcome.MTLS), r("fixed", outcome.OK, 200, outcome.MTLS), r("new", outcome.OK, 503, outcome.TLS)}
	changes, calls := compare(before, after)
	if calls != 6 {
		t.Errorf("%d calls, want 6", calls)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Check+":"+c.Before.String()+"->"+c.After.String()+":"+map[bool]string{true: "broke", false: ""}[c.Broke])
	}
	want := "broke:ok [plaintext]->reset [plaintext]:broke wire:ok [plaintext]->ok [mtls]: fixed:reset [plaintext]->ok [mtls]: gone:ok [mtls]->(not called):broke new:(not called)->http-503 [tls]:"
	if strings.Join(got, " ") != want {
		t.Errorf("changes\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	text := changesText(changes[:1])
	if !strings.Contains(text, "legacy/sleep → b.shop:8080  ok [plaintext]  →  reset [plaintext]  BROKE") {
		t.Errorf("text:\n%s", text)
	}
}

// Bad input to diff fails before Docker is asked anything.
func TestDiffBadInput(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/meshtls-test.sock")
	good := "../../scenarios/testdata/16-cluster-shop.yaml"
	bad := writeBundle(t, "authz.yaml", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny, namespace: shop}\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unmodelled kind in AFTER", []string{good, bad}, "authz.yaml (document 1) AuthorizationPolicy shop/deny"},
		{"one argument", []string{good}, "accepts 2 arg"},
		{"bad -o", []string{"-o", "xml", good, good}, `-o "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"diff"}, tc.args...)...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, out, errOut, tc.want)
			}
		})
	}
}
