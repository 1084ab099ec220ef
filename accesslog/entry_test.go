package accesslog

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The writer's keys and the reader's JSON names are one set: a key written
// but not read, or read but never written, fails here.
func TestEntryReadsEveryKey(t *testing.T) {
	var tags []string
	et := reflect.TypeFor[Entry]()
	for i := range et.NumField() {
		tags = append(tags, et.Field(i).Tag.Get("json"))
	}
	var keys []string
	for k := range Format("p", DirectionInbound, "l") {
		keys = append(keys, k)
	}
	slices.Sort(tags)
	slices.Sort(keys)
	if !slices.Equal(tags, keys) {
		t.Fatalf("Entry reads %v\nFormat writes %v", tags, keys)
	}
}

func TestParseLog(t *testing.T) {
	in := `{"start":"2025-01-01T00:00:00.000Z","proxy":"default/a","direction":"outbound","event":"TcpConnectionEnd","response_code":503,"response_flags":"UF","duration":12,"upstream_host":"10.0.0.3:8080","upstream_local_address":"-","downstream_peer_uri_san":null,"extra":{"x":1}}

{"direction":"inbound","bytes_received":0}
`
	es, err := ParseLog(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("got %d entries, want 2", len(es))
	}
	e := es[0]
	if e.Proxy != "default/a" || e.Direction != DirectionOutbound || e.Event != EventTCPEnd || e.ResponseCode != "503" ||
		e.Duration != "12" || e.UpstreamLocalAddress != "" || e.DownstreamPeerURISAN != "" || e.UpstreamHost != "10.0.0.3:8080" {
		t.Errorf("entry 0 = %+v", e)
	}
	if es[1].Direction != DirectionInbound || es[1].BytesReceived != "0" {
		t.Errorf("entry 1 = %+v", es[1])
	}
	if _, err := ParseLog(strings.NewReader("{}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("non-JSON line: err = %v, want one naming line 2", err)
	}
}
