package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// teardown undoes what prepare did, in reverse. Every step tolerates the
// thing being gone already, so it can run after a crash at any point.
func (e *Engine) teardown(ctx context.Context, id string) error {
	sw := stopwatch.Start(ctx, "teardown", "id", id[:12])
	defer sw.Done()
	var errs []error
	if err := e.Networks.Unpublish(ctx, id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("unpublish")
	nets, err := e.Networks.List(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range nets {
		if err := e.Networks.Disconnect(ctx, n.Name, id); err != nil {
			errs = append(errs, err)
		}
	}
	sw.Lap("disconnect")
	if err := e.Networks.RemoveSandbox(ctx, id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("sandbox")
	if err := e.dropDNS(ctx); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("dns")
	if err := snapshot.Unmount(e.rootfsDir(id)); err != nil {
		errs = append(errs, err)
	}
	if err := e.unmountShm(id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("unmount")
	e.removeCgroupParent()
	if len(errs) == 0 {
		// The empty mount point is the marker that a start made something
		// to undo (see needsTeardown); with everything undone, drop it.
		if err := os.Remove(e.rootfsDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// needsTeardown reports whether a start left something to undo. prepare
// creates the rootfs mount point before any other host object, and teardown
// removes it last, so its presence is a safe marker.
func (e *Engine) needsTeardown(id string) bool {
	_, err := os.Stat(e.rootfsDir(id))
	return err == nil
}

// removeCgroupParent removes the instance's parent cgroup once it is empty;
// libcontainer removes only each container's own leaf.
func (e *Engine) removeCgroupParent() {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + e.cgroupParent())
	dirs = append(dirs, "/sys/fs/cgroup"+e.cgroupParent())
	for _, d := range dirs {
		_ = unix.Rmdir(d) // fails while another container still uses it
	}
}

// recoverLostShim handles a container whose shim died: it kills whatever is
// left of the container, tears down its resources and records the exit.
// Called with the container's lock held.
func (e *Engine) recoverLostShim(ctx context.Context, id string, st runtime.Status) (runtime.Status, error) {
	if c, err := libcontainer.Load(e.libcontainerRoot(), id); err == nil {
		killAndWait(c)
		_ = c.Destroy()
	}
	if err := e.teardown(ctx, id); err != nil {
		st.State = runtime.StateDead
		st.Error = "shim exited unexpectedly; cleanup failed: " + err.Error()
		_ = runtime.WriteStatus(e.Containers.StatusPath(id), st)
		return st, err
	}
	os.Remove(filepath.Join(e.runDir(id), "shim.sock"))
	os.Remove(filepath.Join(e.runDir(id), "shim.pid"))
	st = lostStatus(st)
	return st, runtime.WriteStatus(e.Containers.StatusPath(id), st)
}

// lostStatus is the status recorded for a container whose shim was lost.
func lostStatus(st runtime.Status) runtime.Status {
	st.State = runtime.StateExited
	st.ExitCode = 137
	st.Pid = 0
	if st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		st.FinishedAt = time.Now().UTC()
	}
	st.Error = "shim exited unexpectedly; container killed"
	return st
}

// killAndWait kills what is left of a container no shim supervises and
// waits for its init to be gone. The init is not our child, so the wait is
// on a pidfd; the pidfd is opened before the checks that the pid is still
// the container's, so a reused pid is never signalled.
func killAndWait(c *libcontainer.Container) {
	state, err := c.State()
	if err != nil || state.InitProcessPid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(state.InitProcessPid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	s, err := c.Status()
	if err != nil || s == libcontainer.Stopped {
		return
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return
	}
	if s == libcontainer.Paused {
		_ = c.Resume() // a frozen process takes its SIGKILL when thawed
	}
	// A thawed, killed init exits at once; bound the wait for a frozen one.
	_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000)
}

// RunShim is the body of "berth shim CONFIG": it supervises one container
// and, when it exits, tears down its network and mounts, since no daemon is
// left to do so.
func (e *Engine) RunShim(ctx context.Context, cfg runtime.Config) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	return runtime.Serve(ctx, cfg, runtime.Hooks{
		Running: func() { go e.watchDNS(wctx) },
		Exit: func(ctx context.Context, _ runtime.Status) error {
			stopWatch()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			return e.teardown(ctx, cfg.ID)
		},
	})
}
