package pod

import (
	"io"
	"strings"
	"testing"
)

func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"bogus"}, `unknown subcommand "bogus"`},
		{[]string{"agent", "--config", "/nonexistent/pod.json"}, "read pod config"},
		{[]string{"init", "--outbound-port", "0"}, "ports must be"},
	} {
		err := Main(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Main(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}
