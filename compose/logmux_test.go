package compose

import (
	"bytes"
	"strings"
	"sync"
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
		m.Flush()
		got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer for a writer on another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines are written together: nothing at once, all within flushDelay of
// the first, and a burst larger than the buffer without waiting.
func TestLogMuxGathersLines(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	m := NewLogMux(&out, []string{"web-1"}, []string{"web"}, LogOptions{})
	entry := jsonlog.Entry{Log: "hello\n"}
	m.Line("web-1", "web", entry)
	m.Notice("web-1 exited with code 0")
	if got := out.String(); got != "" {
		t.Fatalf("written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := out.String(); got != "web-1  | hello\nweb-1 exited with code 0\n" {
		t.Fatalf("after flushDelay: %q", got)
	}

	var burst syncBuffer
	m = NewLogMux(&burst, []string{"web-1"}, []string{"web"}, LogOptions{NoPrefix: true})
	long := jsonlog.Entry{Log: strings.Repeat("x", 1023) + "\n"}
	const total = 2 * muxBuffer
	for range total / 1024 {
		m.Line("web-1", "web", long)
	}
	// Whatever the timer did, less than a buffer's worth may wait.
	if n := len(burst.String()); n <= total-muxBuffer {
		t.Fatalf("%d bytes of %d written before a flush", n, total)
	}
	m.Flush()
	if n := len(burst.String()); n != total {
		t.Fatalf("%d bytes of %d written after Flush", n, total)
	}
}
