package runtime

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func openLock(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A look at a container happens while another command spawns its shim:
// the look must never make the spawn fail.
func TestShimActiveNeverMakesASpawnFail(t *testing.T) {
	dir := t.TempDir()
	openLock(t, dir).Close()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			ShimActive(dir)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for i := 0; i < 20000; i++ {
		f := openLock(t, dir)
		if err := lockShim(f, "c"); err != nil {
			t.Fatalf("spawn %d while another command looked: %v", i, err)
		}
		f.Close()
	}
}

func TestShimLockIsExclusiveAndGoesWithTheShim(t *testing.T) {
	dir := t.TempDir()
	if ShimActive(dir) {
		t.Fatal("active with no lock file")
	}
	shim := openLock(t, dir)
	if err := lockShim(shim, "c"); err != nil {
		t.Fatal(err)
	}
	if !ShimActive(dir) {
		t.Fatal("a held shim lock is not seen")
	}
	second := openLock(t, dir)
	defer second.Close()
	if err := lockShim(second, "c"); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second spawn: %v, want already exists", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- AwaitShimExit(t.Context(), dir) }()
	select {
	case err := <-exited:
		t.Fatalf("AwaitShimExit returned while the shim holds its lock: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	shim.Close() // the shim exits
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
	if ShimActive(dir) {
		t.Fatal("active after the shim let go")
	}
	if err := lockShim(second, "c"); err != nil {
		t.Fatalf("spawn after the shim exited: %v", err)
	}
}

// A shim started by an older berth holds an exclusive flock instead.
func TestShimLockSeesAnOlderShim(t *testing.T) {
	dir := t.TempDir()
	old := openLock(t, dir)
	defer old.Close()
	if err := unix.Flock(int(old.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if !ShimActive(dir) {
		t.Fatal("an older shim's flock is not seen")
	}
	f := openLock(t, dir)
	defer f.Close()
	if err := lockShim(f, "c"); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("spawn next to an older shim: %v, want already exists", err)
	}
}
