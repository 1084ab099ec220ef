package pod

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtls/meshtls/outcome"
)

// Live capture on the loopback interface: a TLS call and a plaintext call to
// the echo app, then /flows-style reads right after (Sync must catch up).
func TestCaptureLoopback(t *testing.T) {
	c, err := StartCapture("lo")
	if err != nil {
		t.Skipf("capture on lo unavailable (needs CAP_NET_RAW): %v", err)
	}
	defer c.Close()
	paths := testPaths(t)
	plain, secure := startAgent(t, paths)

	tr := Call(context.Background(), CallRequest{URL: "https://" + secure + "/", SNI: ptr("b.example.com")}, paths)
	pr := Call(context.Background(), CallRequest{URL: "http://" + plain + "/cap"}, paths)
	if tr.Result != outcome.OK || pr.Result != outcome.OK {
		t.Fatalf("calls: %+v / %+v", tr, pr)
	}
	flows, err := c.Flows(0)
	if err != nil {
		t.Fatal(err)
	}
	find := func(src string) *Flow {
		for i := range flows {
			if flows[i].Src == src {
				return &flows[i]
			}
		}
		t.Fatalf("no flow from %s in %+v", src, flows)
		return nil
	}
	f := find(tr.LocalAddr)
	if f.Kind != "tls" || f.SNI != "b.example.com" || !slices.Equal(f.ALPN, []string{"http/1.1"}) ||
		f.TLSVersion != "TLSv1.3" || f.ServerVersion != "TLSv1.3" || f.Dst != tr.RemoteAddr {
		t.Errorf("tls flow = %+v", f)
	}
	f = find(pr.LocalAddr)
	if f.Kind != "plaintext" || !strings.HasPrefix(f.Preview, "GET /cap HTTP/1.1..") {
		t.Errorf("plaintext flow = %+v", f)
	}
	last := flows[len(flows)-1].Seq
	if more, err := c.Flows(last); err != nil || len(more) != 0 {
		t.Errorf("since=%d: %+v %v", last, more, err)
	}

	var buf bytes.Buffer
	if err := c.WritePcap(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if len(data) > pcapSnaplen || ci.CaptureLength != len(data) {
			t.Fatalf("packet %d: %d bytes, ci %+v", n, len(data), ci)
		}
		n++
	}
	if n < 10 {
		t.Errorf("pcap holds %d packets", n)
	}
}
