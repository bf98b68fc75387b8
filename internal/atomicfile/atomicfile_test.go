package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplaceAndWriteLeaveOnlyTheNewFile: both replace the content whole,
// set the mode, and leave no temporary file behind.
func TestReplaceAndWriteLeaveOnlyTheNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := Write(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceJSON(p, map[string]int{"a": 1}, 0o644); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(p, &got); err != nil || got["a"] != 1 {
		t.Fatalf("read back %v, %v", got, err)
	}
	if b, _ := os.ReadFile(p); string(b) != `{"a":1}` {
		t.Errorf("ReplaceJSON wrote %q, want compact JSON", b)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
}
