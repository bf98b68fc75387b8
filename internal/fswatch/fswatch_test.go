package fswatch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBatches: writes, a save by rename, a new directory with files and a
// deletion come as batches of paths; skipped paths never do.
func TestBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "skipme"), 0o755)
	os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o644)
	w, err := New([]string{dir}, func(p string) bool { return strings.Contains(p, "skipme") }, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []string)
	done := make(chan error)
	go func() { done <- w.Run(t.Context(), out) }()

	next := func() []string {
		t.Helper()
		select {
		case b := <-out:
			for i := range b {
				b[i], _ = filepath.Rel(dir, b[i])
			}
			return b
		case <-time.After(5 * time.Second):
			t.Fatal("no batch")
			return nil
		}
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(dir, "skipme", "x"), []byte("1"), 0o644)
	// An editor's save: a temporary file renamed over the real one.
	os.WriteFile(filepath.Join(dir, ".a.txt.swp"), []byte("2"), 0o644)
	os.Rename(filepath.Join(dir, ".a.txt.swp"), filepath.Join(dir, "a.txt"))
	if got := next(); !slices.Contains(got, "a.txt") || slices.Contains(got, "skipme/x") {
		t.Errorf("batch = %q, want a.txt and nothing skipped", got)
	}
	os.MkdirAll(filepath.Join(dir, "new", "deep"), 0o755)
	os.WriteFile(filepath.Join(dir, "new", "deep", "f"), []byte("1"), 0o644)
	if got := next(); !slices.Contains(got, "new/deep/f") {
		t.Errorf("batch = %q, want new/deep/f", got)
	}
	os.Remove(filepath.Join(dir, "old"))
	if got := next(); !slices.Equal(got, []string{"old"}) {
		t.Errorf("batch = %q, want the deleted file", got)
	}
	w.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}
