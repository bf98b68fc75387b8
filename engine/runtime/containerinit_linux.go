package runtime

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerInit is PID 1 of a container with init: true, in the manner of
// tini: it runs the command as its child, forwards every signal it gets to
// it, reaps every process that ends up its child, and exits with the
// command's status (128+N when a signal ended it).
func containerInit(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth init: no command")
		return 127
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	if os.Getpid() != 1 {
		// Sharing another PID namespace: orphans must still come to us.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
		return 127
	}
	// Signals this process handles are reset to their defaults by exec, so
	// the command starts with a clean slate.
	child, err := os.StartProcess(path, args, &os.ProcAttr{Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
		return 126
	}
	for sig := range sigs {
		s, _ := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			if code, done := reap(child.Pid); done {
				return code
			}
		case syscall.SIGURG:
			// The Go runtime preempts its own threads with it.
		default:
			_ = syscall.Kill(child.Pid, s)
		}
	}
	return 0
}

// reap collects every exited child; done is set once main has exited.
func reap(main int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return code, done
		}
		if pid == main {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// CheckInitBinary fails unless exe, the binary the shim runs (and clones
// into the container's init), can run inside a container as its minimal
// init: it must be static, since the container has none of the host's
// shared libraries. make build makes it so.
func CheckInitBinary(exe string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("init: true needs a statically linked berth (build it with make build)")
		}
	}
	return nil
}
