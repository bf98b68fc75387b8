package compose

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/jsonlog"
)

func TestLogMuxPrefixes(t *testing.T) {
	t.Parallel()
	entry := jsonlog.Entry{Log: "hello\n", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, tc := range []struct {
		name string
		opts LogOptions
		want []string
	}{
		{"plain, padded to the longest name plus one", LogOptions{}, []string{"web-1     | hello", "client-1  | hello"}},
		// Colours go to services in name order: client cyan, web yellow.
		{"colour per service", LogOptions{Color: true}, []string{"\x1b[33mweb-1     |\x1b[0m hello", "\x1b[36mclient-1  |\x1b[0m hello"}},
		{"timestamps", LogOptions{Timestamps: true}, []string{"web-1     | 2026-01-02T03:04:05Z hello", "client-1  | 2026-01-02T03:04:05Z hello"}},
		{"no prefix", LogOptions{NoPrefix: true}, []string{"hello", "hello"}},
	} {
		var buf bytes.Buffer
		m := NewLogMux(&buf, []string{"web-1", "client-1"}, []string{"web", "client"}, tc.opts)
		m.Line("web-1", "web", entry)
		m.Line("client-1", "client", entry)
		got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
