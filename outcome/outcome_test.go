package outcome

import "testing"

func TestExpectable(t *testing.T) {
	for r, want := range map[Result]bool{
		OK: true, Failed: true, Reset: true, Refused: true, Timeout: true, TLSError: true,
		HTTP(100): true, HTTP(503): true, HTTP(599): true,
		DNSError: false, Error: false, "": false, "http-99": false, "http-600": false,
		"http-0503": false, "http-+50": false, "http-abc": false, "OK": false,
	} {
		if got := r.Expectable(); got != want {
			t.Errorf("%q.Expectable() = %v, want %v", r, got, want)
		}
	}
}

func TestWire(t *testing.T) {
	if got := Layers(); got != None {
		t.Errorf("Layers() = %q, want none", got)
	}
	if got := Layers(MTLS, TLS); got != "mtls+tls" {
		t.Errorf("Layers(mtls, tls) = %q", got)
	}
	if !Layers(MTLS, TLS).Has(MTLS) || Layers(TLS, TLS).Has(MTLS) || Plaintext.Has(TLS) {
		t.Error("Has reports layers wrongly")
	}
	if got := Join([]Wire{TLS, Layers(MTLS, TLS)}, ", "); got != "tls, mtls+tls" {
		t.Errorf("Join = %q", got)
	}
}
