package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Spawned is a shim Spawn started.
type Spawned struct {
	Pid  int
	hold *os.File // with Hold: closed when the spawner lets go
}

// Release lets go of a container the shim holds (Config.Hold): from then on
// a container that was not started is stopped, so a spawner that dies
// never leaves a held container behind. Safe on nil and without Hold.
func (s *Spawned) Release() {
	if s != nil && s.hold != nil {
		s.hold.Close()
		s.hold = nil
	}
}

// Spawn converts the bundle's spec for the shim (start_linux.go) and starts
// "<exe> shim - <run dir>" in a session of its own, so it survives the CLI, with the
// shim's configuration on its standard input (no file: nothing reads it
// after the shim, and each file a start creates costs), and
// returns once the shim reports the container running (created, with
// Hold) or fails to start it. logPath receives the shim's diagnostics.
func Spawn(ctx context.Context, exe string, cfg Config, logPath string) (*Spawned, error) {
	sh, err := spawn(ctx, exe, cfg, logPath)
	if err != nil && sh != nil {
		sh.Release()
	}
	return sh, err
}

func spawn(ctx context.Context, exe string, cfg Config, logPath string) (*Spawned, error) {
	dir := filepath.Dir(cfg.Socket)
	if err := prepareStart(&cfg, dir); err != nil {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	// The lock passes to the shim with the descriptor and is held until the
	// shim exits: from this instant on, nobody can mistake a shim that is
	// still starting for a missing one.
	if err := lockShim(lock, cfg.ID); err != nil {
		return nil, err
	}
	cfg.CgroupMounts = hostCgroupMounts()
	conf, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The socket listens from here on and passes to the shim: a client
	// that finds the shim's lock held always finds the socket too, and
	// its requests wait in the backlog until the shim serves them.
	_ = os.Remove(cfg.Socket)
	l, err := listenUnix(cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("shim socket: %w", err)
	}
	sock, err := l.(*net.UnixListener).File()
	l.Close()
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	// The hold pipe: the shim reads EOF from it when the spawner lets go.
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer holdR.Close()
	sh := &Spawned{hold: holdW}
	if !cfg.Hold {
		sh.Release()
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		sh.Release()
		return nil, err
	}
	defer logf.Close()
	// The run directory only names the container in ps (and to the tests'
	// leak check).
	cmd := exec.Command(exe, "shim", ConfigFromStdin, dir)
	cmd.Env = shimEnv(os.Environ())
	cmd.Stdin = bytes.NewReader(conf)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{w, lock, sock, holdR} // fds 3, 4, 5, 6
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		sh.Release()
		return nil, fmt.Errorf("start shim: %w", err)
	}
	w.Close()
	sh.Pid = cmd.Process.Pid
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
		return sh, ctx.Err()
	case m := <-msg:
		switch {
		case m == "ok":
			return sh, nil
		case strings.HasPrefix(m, "error: "):
			awaitExit()
			return sh, fmt.Errorf("%s: %w", strings.TrimPrefix(m, "error: "), errdefs.ErrFailedPrecondition)
		default:
			awaitExit()
			diag, _ := os.ReadFile(logPath)
			return sh, fmt.Errorf("shim exited before the container started: %s: %w",
				lastLine(string(diag)), errdefs.ErrUnknown)
		}
	}
}

// shimEnv is the environment a shim runs with: the spawner's, with one P
// (GOMAXPROCS=1) unless the spawner sets GOMAXPROCS (a user who exports it
// means it, as the DNS server honours it too). A shim's goroutines mostly
// wait; one P is enough for its log copying and keeps its private memory
// about 0.3 MiB lower (docs/performance.md): the runtime's per-P caches and
// what a second P's workers touch. Set at exec, not with runtime.GOMAXPROCS
// in the shim: resizing after start kept more. libcontainer hands it on to
// its init (which runs with one P as well), never to the container's
// command; the seccomp compiler the shim runs takes two Ps whatever it
// inherits (capture).
func shimEnv(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return env
		}
	}
	return append(env, "GOMAXPROCS=1")
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

// The descriptors a shim inherits from Spawn.
const (
	fdReady  = 3 // a pipe: "ok" or "error: ..." once the container runs
	fdLock   = 4 // the shim lock, held for the shim's life
	fdSocket = 5 // the control socket, listening
	fdHold   = 6 // the hold pipe: EOF once the spawner lets go
)

// holdLock keeps the inherited shim lock for the life of this process, out
// of the container's reach.
func holdLock() {
	syscall.CloseOnExec(fdLock)
}

// readyPipe returns the inherited ready pipe, marked close-on-exec so the
// container never holds it open.
func readyPipe() *os.File {
	return inherited(fdReady, "ready")
}

// inheritedListener returns the control socket Spawn listens on for the
// shim, or nil when the shim was started some other way.
func inheritedListener() (net.Listener, error) {
	if typ, err := unix.GetsockoptInt(fdSocket, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		return nil, nil
	}
	f := inherited(fdSocket, "shim.sock")
	if f == nil {
		return nil, nil
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return l, nil
}

// holdReleased returns a channel closed when the spawner lets go of a held
// container (or at once, without a hold pipe).
func holdReleased() <-chan struct{} {
	ch := make(chan struct{})
	f := inherited(fdHold, "hold")
	if f == nil {
		close(ch)
		return ch
	}
	go func() {
		defer f.Close()
		var b [1]byte
		for {
			if _, err := f.Read(b[:]); err != nil {
				close(ch)
				return
			}
		}
	}()
	return ch
}

func inherited(fd int, name string) *os.File {
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil
	}
	if _, err := f.Stat(); err != nil {
		return nil
	}
	return f
}
