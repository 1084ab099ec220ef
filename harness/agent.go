package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/meshtls/meshtls/pod"
)

// AgentClient talks to a pod's agent over its Unix socket.
type AgentClient struct {
	sock string
	hc   *http.Client
}

func newAgentClient(sock string) *AgentClient {
	return &AgentClient{sock: sock, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (a *AgentClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Call makes one call from inside the pod.
func (a *AgentClient) Call(ctx context.Context, req pod.CallRequest) (*pod.CallResult, error) {
	var res pod.CallResult
	if err := a.do(ctx, http.MethodPost, "/call", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Flows returns the connections captured after seq.
func (a *AgentClient) Flows(ctx context.Context, since uint64) ([]pod.Flow, error) {
	var fl []pod.Flow
	err := a.do(ctx, http.MethodGet, fmt.Sprintf("/flows?since=%d", since), nil, &fl)
	return fl, err
}

// Pcap returns the pod's capture as a pcap file.
func (a *AgentClient) Pcap(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/pcap", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}
