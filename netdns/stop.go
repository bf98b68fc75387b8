package netdns

import (
	"context"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/lockfile"
)

// Stop ends the server in dir if the records have no networks left, and
// waits for it to exit, so that a command removing the last network leaves
// no process behind. A server that is needed again is left alone: the
// check and the signal happen under the lock Ensure takes.
func Stop(ctx context.Context, dir string) error {
	l, err := lockfile.Acquire(ctx, filepath.Join(dir, ensureLock))
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := ReadRecords(dir)
	if err != nil || len(r.Networks) > 0 {
		return err
	}
	pid, ok := livePID(dir)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	for {
		if _, ok := livePID(dir); !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
