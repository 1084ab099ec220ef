package pod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtls/meshtls/outcome"
)

// unixClient talks HTTP to the agent socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// RunAgent end to end: ready line, /ready, /call over the Unix socket to the
// agent's own echo port, /flows without capture, clean exit on cancel.
func TestAgentSocket(t *testing.T) {
	paths := testPaths(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cfg := Config{Name: "a", Namespace: "ns1", Ports: []Port{{Name: "http", Port: uint32(port)}}}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunAgent(ctx, cfg, AgentOptions{Paths: paths, ListenHost: "127.0.0.1", Logf: t.Logf}, sock, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != ReadyLine {
		t.Fatalf("first line %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	c := unixClient(sock)

	resp, err := c.Get("http://agent/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ready: %v %v", resp, err)
	}
	resp.Body.Close()

	body, _ := json.Marshal(CallRequest{URL: fmt.Sprintf("http://a.ns1:%d/p", port), Dial: fmt.Sprintf("127.0.0.1:%d", port)})
	resp, err = c.Post("http://agent/call", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res CallResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res.Result != outcome.OK || res.Report == nil || res.Report.Workload != "ns1/a" || res.Report.Host != fmt.Sprintf("a.ns1:%d", port) {
		t.Fatalf("call = %+v", res)
	}

	resp, err = c.Post("http://agent/call", "application/json", strings.NewReader(`{"url": 1}`))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad request: %v %v", resp, err)
	}

	resp, err = c.Get("http://agent/flows?since=0")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(msg), "capture is off") {
		t.Errorf("/flows without capture: %d %s", resp.StatusCode, msg)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not exit after cancel")
	}
}

// A capture that cannot start leaves the agent running and /flows explaining.
func TestAgentCaptureUnavailable(t *testing.T) {
	a := NewAgent(Config{Name: "a", Namespace: "ns", Capture: true, Iface: "no-such-if0"},
		AgentOptions{Paths: testPaths(t), ListenHost: "127.0.0.1", Logf: t.Logf})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, path := range []string{"/flows", "/pcap"} {
		rec := httptestRecorder(a.Handler(), path)
		if rec.code != http.StatusServiceUnavailable || !strings.Contains(rec.body, "capture unavailable") || !strings.Contains(rec.body, "no-such-if0") {
			t.Errorf("%s: %d %s", path, rec.code, rec.body)
		}
	}
}
