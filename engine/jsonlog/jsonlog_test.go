package jsonlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCopyAndRead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := copyStream(w, "stdout", "one\ntwo\nthree"); err != nil {
		t.Fatal(err)
	}
	if err := copyStream(w, "stderr", "oops\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `{"log":"one\n","stream":"stdout","time":"`) {
		t.Fatalf("not docker json-file format:\n%s", raw)
	}
	for _, tc := range []struct {
		tail int
		want string
	}{
		{-1, "one|two|three|oops"},
		{0, ""},
		{1, "oops"},
		{2, "three|oops"},
		{10, "one|two|three|oops"},
	} {
		var got []string
		err := Read(t.Context(), path, ReadOptions{Tail: tc.tail}, func(e Entry) error {
			got = append(got, strings.TrimSuffix(e.Log, "\n"))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("tail %d: got %q want %q", tc.tail, g, tc.want)
		}
	}
}

func TestLongLineIsSplit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "l.log")
	w, _ := Create(path, Options{})
	long := strings.Repeat("x", maxLine*2+10) + "\n"
	if err := copyStream(w, "stdout", long); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lines, err := Lines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || strings.Join(lines, "") != strings.TrimSuffix(long, "\n") {
		t.Fatalf("got %d entries", len(lines))
	}
}

func TestFollowStopsWhenDone(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f.log")
	w, _ := Create(path, Options{})
	var done atomic.Bool
	go func() {
		for i := range 5 {
			w.Write(Entry{Log: fmt.Sprintf("line %d\n", i), Stream: "stdout", Time: time.Now()})
			time.Sleep(10 * time.Millisecond)
		}
		done.Store(true)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n := 0
	err := Read(ctx, path, ReadOptions{Tail: -1, Follow: true, Done: done.Load}, func(Entry) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("followed %d entries, want 5", n)
	}
}

// copyStream writes s as one stream's output, in small chunks as a pipe
// would deliver it, and flushes a last line without newline.
func copyStream(w *Writer, stream, s string) error {
	l := w.Stream(stream)
	for len(s) > 0 {
		n := min(len(s), 7)
		if _, err := l.Write([]byte(s[:n])); err != nil {
			return err
		}
		s = s[n:]
	}
	return l.Flush()
}
