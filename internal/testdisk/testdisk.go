// Package testdisk gives tests a small disk that is (nearly) full: a tmpfs
// mounted for the test, most of it taken by a filler file.
package testdisk

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Full mounts a tmpfs of size bytes on a new directory, fills it but for
// about free bytes, and unmounts it when the test and the cleanups
// registered after this call are done. makeRoom removes the filler. It
// skips the test where tmpfs cannot be mounted (not root).
func Full(t testing.TB, size, free int) (dir string, makeRoom func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	dir = t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, size-free), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		if err := os.Remove(filler); err != nil {
			t.Error(err)
		}
	}
}
