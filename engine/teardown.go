package engine

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
)

// recoverLostShim handles a container whose shim died: it kills whatever is
// left of the container, tears down its resources and records the exit.
// Called with the container's lock held.
func (e *Engine) recoverLostShim(ctx context.Context, id string, st runtime.Status) (runtime.Status, error) {
	if c, err := libcontainer.Load(e.libcontainerRoot(), id); err == nil {
		killAndWait(c)
		_ = c.Destroy()
	}
	if err := e.host.Teardown(ctx, id); err != nil {
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
