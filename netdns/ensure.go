package netdns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// ensureTimeout bounds how long Ensure waits for the server to apply records.
const ensureTimeout = 5 * time.Second

// Ensure publishes r to the server in dir and returns once the server has
// applied it, starting the server with spawn if none is running. spawn must
// start "berth dns" for dir detached from the caller. With no networks in r,
// Ensure only writes the records: the server notices and exits by itself.
func Ensure(ctx context.Context, dir string, r Records, spawn func() error) error {
	gen, err := writeRecords(ctx, dir, r)
	if err != nil {
		return err
	}
	if len(r.Networks) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, ensureTimeout)
	defer cancel()
	// Serialise the alive-or-spawn decision so two commands never start
	// two servers for one directory.
	l, err := lockfile.Acquire(wctx, filepath.Join(dir, ensureLock))
	if err != nil {
		return ensureErr(ctx, dir, gen, err)
	}
	defer l.Unlock()

	spawned := false
	wake := func() error {
		if serverRunning(dir) {
			// The server also polls the file; the signal only saves time.
			if pid, ok := livePID(dir); ok {
				_ = syscall.Kill(pid, syscall.SIGHUP)
			}
			return nil
		}
		if spawned {
			return nil // it may still be starting or waiting for an old one
		}
		spawned = true
		if err := spawn(); err != nil {
			return fmt.Errorf("start dns server: %w", err)
		}
		return nil
	}
	if loadedGeneration(dir) >= gen {
		return nil
	}
	if err := wake(); err != nil {
		return err
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	lastCheck := time.Now()
	for {
		if loadedGeneration(dir) >= gen {
			return nil
		}
		// A server that was exiting as we signalled it is replaced.
		if time.Since(lastCheck) >= pollInterval {
			lastCheck = time.Now()
			if !spawned && !serverRunning(dir) {
				if err := wake(); err != nil {
					return err
				}
			}
		}
		select {
		case <-wctx.Done():
			return ensureErr(ctx, dir, gen, wctx.Err())
		case <-tick.C:
		}
	}
}

func ensureErr(ctx context.Context, dir string, gen uint64, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("dns server in %s: %w", dir, ctx.Err())
	}
	return fmt.Errorf("dns server in %s did not load records generation %d: %v: %w", dir, gen, err, errdefs.ErrUnavailable)
}

// loadedGeneration reads the generation the server last applied; zero when
// it has applied none.
func loadedGeneration(dir string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, loadedFile))
	if err != nil {
		return 0
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// serverRunning reports whether a server holds the directory's lock. It is
// the test for "is there a server" because it cannot be fooled by a stale
// pid file, nor by a server run from an executable other than ours.
func serverRunning(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, serveLock), os.O_RDWR, 0)
	if err != nil {
		return false // never created: no server ever ran here
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}

// livePID returns the pid in the directory's pid file if it names a live
// process that looks like a Berth DNS server. SIGHUP kills most programs,
// so it is only ever sent to a pid that passes this check.
func livePID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	return pid, looksLikeUs(pid)
}

// looksLikeUs accepts a process running our executable (same argv[0] name
// or same binary) or one started as "<anything> dns ...", the command the
// engine spawns.
func looksLikeUs(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return false // gone, or a zombie
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if len(args) > 1 && args[1] == "dns" {
		return true
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	if filepath.Base(args[0]) == filepath.Base(self) {
		return true
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == self
}

// Update publishes r and nudges a running server, without starting one or
// waiting for it: for removals, where a name that lingers for a moment
// costs nothing (its container is gone), but waiting would slow every stop.
func Update(ctx context.Context, dir string, r Records) error {
	if _, err := writeRecords(ctx, dir, r); err != nil {
		return err
	}
	if pid, ok := livePID(dir); ok {
		_ = syscall.Kill(pid, syscall.SIGHUP)
	}
	return nil
}

// Running reports whether a server serves dir (it holds the server lock for
// its whole life).
func Running(dir string) bool { return serverRunning(dir) }
