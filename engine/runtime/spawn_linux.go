package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Spawn writes the shim's configuration next to its socket and starts
// "<exe> shim <config>" in a session of its own, so it survives the CLI, and
// returns once the shim reports the container running or fails to start it.
// logPath receives the shim's own diagnostics.
func Spawn(ctx context.Context, exe string, cfg Config, logPath string) (int, error) {
	dir := filepath.Dir(cfg.Socket)
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	// The lock passes to the shim with the descriptor and is held until the
	// shim exits: from this instant on, nobody can mistake a shim that is
	// still starting for a missing one.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return 0, fmt.Errorf("a shim for %s is already running: %w", cfg.ID, errdefs.ErrAlreadyExists)
	}
	confPath := filepath.Join(dir, "shim.json")
	if err := atomicfile.WriteJSON(confPath, cfg, 0o600); err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "shim", confPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{w, lock} // fd 3: the ready pipe; fd 4: the shim lock
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("start shim: %w", err)
	}
	w.Close()
	pid := cmd.Process.Pid
	// The shim is not ours to wait for beyond its start; it is reparented
	// when we exit. Reap it in the background if we outlive it.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	// A shim that failed releases its lock only as it exits; wait for that
	// so the caller's cleanup never races its last steps.
	awaitExit := func() {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	}

	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		msg <- strings.TrimSpace(string(b))
	}()
	select {
	case <-ctx.Done():
		// The shim goes on; the caller's cleanup stops it through its socket.
		return pid, ctx.Err()
	case m := <-msg:
		switch {
		case m == "ok":
			return pid, nil
		case strings.HasPrefix(m, "error: "):
			awaitExit()
			return pid, fmt.Errorf("%s: %w", strings.TrimPrefix(m, "error: "), errdefs.ErrFailedPrecondition)
		default:
			awaitExit()
			diag, _ := os.ReadFile(logPath)
			return pid, fmt.Errorf("shim exited before the container started: %s: %w",
				lastLine(string(diag)), errdefs.ErrUnknown)
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no diagnostics"
	}
	return s
}

// lockFile is held (flock) by the live shim of a container.
const lockFile = "shim.lock"

// ShimActive reports whether a shim holds the lock in dir (the directory of
// its socket): one that runs or is still starting.
func ShimActive(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// HoldLock keeps the inherited shim lock (fd 4) for the life of this
// process, out of the container's reach.
func HoldLock() {
	syscall.CloseOnExec(4)
}

// ReadyPipe returns the ready pipe a shim inherits as fd 3, marked
// close-on-exec so the container never holds it open.
func ReadyPipe() *os.File {
	syscall.CloseOnExec(3)
	f := os.NewFile(3, "ready")
	if f == nil {
		return nil
	}
	if _, err := f.Stat(); err != nil {
		return nil
	}
	return f
}
