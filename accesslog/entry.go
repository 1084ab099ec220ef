package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Entry is one line of a proxy's access log. Every value is kept as text;
// Envoy's "-" (and JSON null) become "". Unknown keys are ignored. The JSON
// names are the Key constants (entry_test.go holds them equal).
type Entry struct {
	Start     string    `json:"start"`
	Proxy     string    `json:"proxy"`
	Direction Direction `json:"direction"`
	// Event says why the line was written; see Event.
	Event                            Event  `json:"event"`
	Listener                         string `json:"listener"`
	Method                           string `json:"method"`
	Path                             string `json:"path"`
	Authority                        string `json:"authority"`
	Protocol                         string `json:"protocol"`
	ResponseCode                     string `json:"response_code"`
	ResponseFlags                    string `json:"response_flags"`
	ResponseCodeDetails              string `json:"response_code_details"`
	ConnectionTerminationDetails     string `json:"connection_termination_details"`
	UpstreamTransportFailureReason   string `json:"upstream_transport_failure_reason"`
	DownstreamTransportFailureReason string `json:"downstream_transport_failure_reason"`
	UpstreamCluster                  string `json:"upstream_cluster"`
	UpstreamHost                     string `json:"upstream_host"`
	UpstreamLocalAddress             string `json:"upstream_local_address"`
	DownstreamLocalAddress           string `json:"downstream_local_address"`
	DownstreamRemoteAddress          string `json:"downstream_remote_address"`
	RequestedServerName              string `json:"requested_server_name"`
	DownstreamTLSVersion             string `json:"downstream_tls_version"`
	DownstreamPeerURISAN             string `json:"downstream_peer_uri_san"`
	DownstreamPeerSubject            string `json:"downstream_peer_subject"`
	DownstreamPeerCertSerial         string `json:"downstream_peer_cert_serial"`
	UpstreamTLSVersion               string `json:"upstream_tls_version"`
	UpstreamPeerURISAN               string `json:"upstream_peer_uri_san"`
	UpstreamPeerSubject              string `json:"upstream_peer_subject"`
	FilterChainName                  string `json:"filter_chain_name"`
	Duration                         string `json:"duration"`
	BytesReceived                    string `json:"bytes_received"`
	BytesSent                        string `json:"bytes_sent"`
}

// UnmarshalJSON accepts strings, numbers and null for every key, because
// Envoy's json_format keeps the type of each command operator (%DURATION%
// and %RESPONSE_CODE% are numbers).
func (e *Entry) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	norm := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		switch v := v.(type) {
		case nil:
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = strconv.FormatBool(v)
		default:
			enc, _ := json.Marshal(v)
			s = string(enc)
		}
		if s == "-" {
			s = ""
		}
		norm[k] = s
	}
	enc, err := json.Marshal(norm)
	if err != nil {
		return err
	}
	type plain Entry // no UnmarshalJSON: no recursion
	var p plain
	if err := json.Unmarshal(enc, &p); err != nil {
		return err
	}
	*e = Entry(p)
	return nil
}

// Parse reads one line.
func Parse(line []byte) (Entry, error) {
	var e Entry
	err := json.Unmarshal(line, &e)
	return e, err
}

// ParseLog reads an access log of one JSON object per line. Blank lines are
// skipped; anything else that is not a JSON object is an error naming the
// line, since it means the log format is not ours.
func ParseLog(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		e, err := Parse(line)
		if err != nil {
			return out, fmt.Errorf("access log line %d is not a JSON object (%v): the proxy's access log must use the harness's json_format", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading access log: %w", err)
	}
	return out, nil
}
