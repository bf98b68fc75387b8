// Package lockfile provides advisory file locks that serialise
// read-modify-write cycles across separate berth processes.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Lock is a held lock; Unlock releases it.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes an exclusive flock on path, creating it (and its directory)
// if needed, and waits until ctx is done. The wait is the kernel's: the
// caller wakes when the holder lets go, not on a timer.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	return acquire(ctx, path, unix.LOCK_EX)
}

// AcquireShared takes a shared flock on path: any number of shared holders,
// or one exclusive holder, at a time.
func AcquireShared(ctx context.Context, path string) (*Lock, error) {
	return acquire(ctx, path, unix.LOCK_SH)
}

func acquire(ctx context.Context, path string, how int) (*Lock, error) {
	for {
		f, err := open(path)
		if err != nil {
			return nil, err
		}
		if err := flock(ctx, f, how); err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if l, ok := current(f, path); ok {
			return l, nil
		}
		// The holder removed the file while we waited: what we hold now
		// locks nothing. Lock the path's new file instead.
	}
}

// TryAcquire takes an exclusive flock on path if nobody holds it; ok is
// false when someone does.
func TryAcquire(path string) (l *Lock, ok bool, err error) {
	for {
		f, err := open(path)
		if err != nil {
			return nil, false, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		if l, ok := current(f, path); ok {
			return l, true, nil
		}
	}
}

func open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// current keeps f as the lock if it is still the file at path (Remove
// unlinks it while held, and a waiter may have opened it before that).
func current(f *os.File, path string) (*Lock, bool) {
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil &&
		held.Dev == now.Dev && held.Ino == now.Ino {
		return &Lock{f: f, path: path}, true
	}
	f.Close()
	return nil, false
}

// flock blocks in the kernel until the lock is ours. A cancelled ctx
// returns at once; the blocked call then finishes on its own and lets go
// of the lock it got.
func flock(ctx context.Context, f *os.File, how int) error {
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err == nil {
		return nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return err
	}
	return Await(ctx, f, func() error { return unix.Flock(int(f.Fd()), how) })
}

// Await runs lock, a call that blocks in the kernel until a lock on f is
// granted (flock, F_OFD_SETLKW), so that ctx can end the wait: the call
// runs in a goroutine, again after EINTR. On success the lock is held
// through f. On an error f is closed; on a cancelled ctx Await returns at
// once and f is closed when the call returns, dropping what it got.
func Await(ctx context.Context, f *os.File, lock func() error) error {
	got := make(chan error, 1)
	go func() {
		err := lock()
		for errors.Is(err, unix.EINTR) {
			err = lock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
		}
		return err
	case <-ctx.Done():
		go func() {
			<-got
			f.Close()
		}()
		return ctx.Err()
	}
}

// Unlock releases the lock. It is safe to call on a nil Lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

// Remove unlinks the lock file, then releases the lock: for a lock whose
// object is gone. Anyone waiting on the old file notices and starts over.
func (l *Lock) Remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.Unlock())
}
