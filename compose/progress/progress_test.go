package progress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// pull is a typical event sequence: an image with two layers, one already
// present.
var pull = []Event{
	{ID: "redis", State: Working, Text: "Pulling"},
	{ID: "aaaa", Parent: "redis", State: Waiting, Text: "Waiting"},
	{ID: "bbbb", Parent: "redis", State: Done, Text: "Already exists"},
	{ID: "aaaa", Parent: "redis", State: Working, Text: "Downloading", Current: 10, Total: 3000},
	{ID: "aaaa", Parent: "redis", State: Working, Text: "Downloading", Current: 2000, Total: 3000},
	{ID: "aaaa", Parent: "redis", State: Working, Text: "Downloading", Current: 3000, Total: 3000},
	{ID: "aaaa", Parent: "redis", State: Done, Text: "Pull complete", Current: 3000, Total: 3000},
	{ID: "redis", State: Done, Text: "Pulled"},
}

func TestPlainPrintsChangesOnly(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, Plain)
	for _, ev := range pull {
		w.Event(ev)
	}
	w.Event(Event{ID: "db", State: Error, Text: "Error", Detail: "manifest unknown"})
	w.Close()
	want := `redis Pulling
aaaa Waiting
bbbb Already exists
aaaa Downloading
aaaa Pull complete 3kB
redis Pulled
db Error: manifest unknown
`
	if b.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, JSON)
	for _, ev := range pull {
		w.Event(ev)
	}
	w.Close()
	var got []Event
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if _, ok := raw["state"].(string); !ok {
			t.Fatalf("line %q: state is not a name", l)
		}
		var ev struct {
			Event
			State string `json:"state"`
		}
		json.Unmarshal([]byte(l), &ev)
		got = append(got, ev.Event)
		if ev.ID == "redis" && ev.State == "done" && ev.Text != "Pulled" {
			t.Errorf("done line %q", l)
		}
	}
	// Every state change is there; the burst of byte updates within
	// jsonEvery may be thinned, but the last one (complete) is kept.
	if len(got) < 6 || len(got) > len(pull) {
		t.Errorf("got %d lines, want 6 to %d:\n%s", len(got), len(pull), b.String())
	}
	if !strings.Contains(b.String(), `"current":3000,"total":3000`) {
		t.Errorf("no complete byte count in:\n%s", b.String())
	}
}

func TestTTYDrawsBarsAndFinalState(t *testing.T) {
	var b syncBuffer
	w := New(&b, TTY)
	for _, ev := range pull {
		w.Event(ev)
	}
	w.Close()
	out := b.String()
	for _, want := range []string{"✔ redis Pulled", "✔ aaaa Pull complete", "✔ bbbb Already exists", "3kB"} {
		if !strings.Contains(out, want) {
			t.Errorf("tty output lacks %q:\n%s", want, out)
		}
	}
}

func TestTTYRedrawsABar(t *testing.T) {
	var b syncBuffer
	w := New(&b, TTY)
	w.Event(Event{ID: "aaaa", State: Working, Text: "Downloading", Current: 1500, Total: 3000})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), "1.5kB/3kB") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the display redraws on its own clock
	}
	w.Event(Event{ID: "aaaa", State: Done, Text: "Pull complete", Current: 3000, Total: 3000})
	w.Close()
	out := b.String()
	if !strings.Contains(out, "[=") || !strings.Contains(out, "1.5kB/3kB") {
		t.Errorf("no bar with sizes while working:\n%q", out)
	}
	// A terminal gets the line redrawn in place, not a growing list.
	if !strings.Contains(out, "\x1b[1A\x1b[J") || !strings.HasSuffix(out, " ✔ aaaa Pull complete   3kB\n") {
		t.Errorf("not redrawn in place:\n%q", out)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []string{"", "auto", "tty", "plain", "quiet", "json"} {
		if _, err := ParseMode(m); err != nil {
			t.Errorf("ParseMode(%q): %v", m, err)
		}
	}
	if _, err := ParseMode("fancy"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseMode(fancy) = %v, want invalid argument", err)
	}
}

func TestQuietAndContext(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, Quiet)
	w.Event(pull[0])
	if b.Len() != 0 {
		t.Errorf("quiet wrote %q", b.String())
	}
	if FromContext(context.Background()) != Discard {
		t.Error("a bare context has a writer")
	}
	p := New(&b, Plain)
	if FromContext(WithWriter(context.Background(), p)) != p {
		t.Error("WithWriter lost its writer")
	}
	// Auto on a buffer is plain.
	a := New(&b, Auto)
	if _, ok := a.(*plainWriter); !ok {
		t.Errorf("auto on a buffer is %T", a)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
