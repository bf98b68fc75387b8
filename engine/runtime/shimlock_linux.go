package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// The shim lock. A live shim holds a write lock on the open file
// description of shim.lock (an OFD lock) for its whole life: Spawn takes
// it and the shim inherits it with the descriptor. Everyone else only
// tests it (F_OFD_GETLK), which holds nothing, so a look at a container can
// never make a concurrent Spawn believe a shim is already there.
//
// Shims started by berth before this lock held an exclusive flock on the
// same file instead. A shared flock finds them, and conflicts with no
// other shared flock: Spawn takes one for the new shim's life (so an
// older berth sees it too), and the tests probe with one.

// lockFile is the shim lock's file in a container's run directory.
const lockFile = "shim.lock"

// wholeFile is a POSIX lock record covering the whole file.
func wholeFile(typ int16) unix.Flock_t { return unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0} }

// lockShim takes the shim lock on f, or fails with AlreadyExists when a
// shim holds it. The locks belong to f's open file description: they pass
// to the shim with the descriptor and go when the last copy is closed.
func lockShim(f *os.File, id string) error {
	running := fmt.Errorf("a shim for %s is already running: %w", id, errdefs.ErrAlreadyExists)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return running
		}
		return fmt.Errorf("shim lock: %w", err)
	}
	lk := wholeFile(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return running
		}
		return fmt.Errorf("shim lock: %w", err)
	}
	return nil
}

// shimHolds tests whether a shim holds the lock behind f, holding nothing
// once it returns.
func shimHolds(f *os.File) bool {
	lk := wholeFile(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		return true
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK) // an older shim's exclusive flock
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// ShimActive reports whether a shim holds the lock in dir (the directory of
// its socket): one that runs or is still starting.
func ShimActive(dir string) bool {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	return shimHolds(f)
}

// AwaitShimExit waits until no shim holds the lock in dir. A shim that
// gave up on its start answers so before it has cleaned up and let go of
// its lock; a new Spawn must wait for that, not find the lock still held.
// The wait is the kernel's (a blocking read lock), not a poll.
func AwaitShimExit(ctx context.Context, dir string) error {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	lk := wholeFile(unix.F_RDLCK)
	if err := lockfile.Await(ctx, f, func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk) }); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wait for the shim in %s: %w", dir, err)
	}
	// Let go of the read lock before answering: a Spawn that follows must
	// find the lock free.
	return f.Close()
}
