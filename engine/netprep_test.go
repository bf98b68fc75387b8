package engine

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestEtcFilesMustBeWrittenOnceAndNeverSeenHalfWritten: a start writes a
// new /etc file in place (no staging file and rename), whatever the umask;
// one that holds the content already is left alone (same inode, so a
// restart creates nothing); one that differs, a half-written file a failed
// start left included, is replaced whole by a new inode, never rewritten
// where a container that has it bound could read it half done.
func TestEtcFilesMustBeWrittenOnceAndNeverSeenHalfWritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	old := syscall.Umask(0o077)
	err := writeEtcFile(p, []byte("127.0.0.1\tlocalhost\n"))
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	fi := stat(t, p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v under umask 077, want 0644 (the container's users read it)", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone (no staging file)", len(ents))
	}
	ino := inodeOf(fi)

	if err := writeEtcFile(p, []byte("127.0.0.1\tlocalhost\n")); err != nil {
		t.Fatal(err)
	}
	if fi2 := stat(t, p); inodeOf(fi2) != ino || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("a file that held the content already was written again")
	}

	// A failed start's leftover: the beginning of the content.
	if err := os.WriteFile(p, []byte("127.0.0.1\tlocal"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(p) // as a container's bind holds the inode
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := writeEtcFile(p, []byte("127.0.0.1\tlocalhost\n10.0.0.2\tweb\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n" {
		t.Errorf("content %q after replacing a half-written file", got)
	}
	if inodeOf(stat(t, p)) == ino {
		t.Error("a file that differed was rewritten in place, where a reader can see it half done")
	}
	buf := make([]byte, 64)
	if n, _ := held.ReadAt(buf, 0); string(buf[:n]) != "127.0.0.1\tlocal" {
		t.Errorf("the old inode's reader sees %q, want the old content untouched", buf[:n])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries after a replacement, want 1", len(ents))
	}
}

func stat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func inodeOf(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }
