package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// output is one stream a process writes: a pipe's read end, or a
// terminal's master side (one stream for both stdout and stderr).
type output struct {
	frame byte // frameStdout or frameStderr
	name  string
	r     *os.File
}

// procIO is the shim's side of a process's stdio.
type procIO struct {
	stdin   io.WriteCloser // nil: the process reads /dev/null
	outputs []output       // nil: output goes to /dev/null
	console *os.File       // the terminal's master side, with a terminal
	// Set up before the start, closed or consumed right after it.
	children      []*os.File
	consoleSocket *os.File
	stdinOnce     sync.Once
}

// newProcIO gives p its stdio: a terminal (whose master the process's init
// sends back over a socket), or pipes; with input or without; discard sends
// output to /dev/null (exec -d).
func newProcIO(p *libcontainer.Process, tty, stdin, discard bool, size *WindowSize) (*procIO, error) {
	pio := &procIO{}
	ok := false
	defer func() {
		if !ok {
			pio.close()
		}
	}()
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		pio.consoleSocket = os.NewFile(uintptr(fds[0]), "console-socket")
		child := os.NewFile(uintptr(fds[1]), "console-socket-child")
		pio.children = append(pio.children, child)
		p.ConsoleSocket = child
		if size != nil {
			p.ConsoleHeight, p.ConsoleWidth = size.Rows, size.Cols
		}
		ok = true
		return pio, nil
	}
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		pio.children = append(pio.children, r)
		pio.stdin = w
		p.Stdin = r
	}
	if !discard {
		for _, s := range []struct {
			frame byte
			name  string
			set   func(*os.File)
		}{
			{frameStdout, "stdout", func(f *os.File) { p.Stdout = f }},
			{frameStderr, "stderr", func(f *os.File) { p.Stderr = f }},
		} {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			pio.children = append(pio.children, w)
			pio.outputs = append(pio.outputs, output{frame: s.frame, name: s.name, r: r})
			s.set(w)
		}
	}
	ok = true
	return pio, nil
}

// started closes the ends that now belong to the process, so readers see
// EOF when its last holder exits, and receives the terminal's master side.
func (pio *procIO) started(stdin bool) error {
	for _, f := range pio.children {
		f.Close()
	}
	pio.children = nil
	if pio.consoleSocket == nil {
		return nil
	}
	defer func() { pio.consoleSocket.Close(); pio.consoleSocket = nil }()
	master, err := recvFd(pio.consoleSocket)
	if err != nil {
		return fmt.Errorf("receive the terminal: %w", err)
	}
	pio.console = master
	pio.outputs = []output{{frame: frameStdout, name: "stdout", r: master}}
	if stdin {
		pio.stdin = nopCloser{master}
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// writeStdin passes input to the process; input it does not take is lost.
func (pio *procIO) writeStdin(p []byte) {
	if pio.stdin != nil {
		_, _ = pio.stdin.Write(p)
	}
}

// closeStdin ends the process's input; with a terminal there is nothing to
// close (the master stays for output), as with containerd's CloseIO.
func (pio *procIO) closeStdin() {
	pio.stdinOnce.Do(func() {
		if pio.stdin != nil {
			pio.stdin.Close()
		}
	})
}

func (pio *procIO) resize(ws WindowSize) error {
	if pio.console == nil {
		return nil
	}
	return unix.IoctlSetWinsize(int(pio.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
}

// close releases everything the shim holds of the process's stdio.
func (pio *procIO) close() {
	pio.closeStdin()
	for _, f := range pio.children {
		f.Close()
	}
	if pio.consoleSocket != nil {
		pio.consoleSocket.Close()
	}
	for _, o := range pio.outputs {
		o.r.Close()
	}
}

// readOutput copies one output into fn, chunk by chunk, until EOF. A
// terminal's master reports EIO once the last process holding the terminal
// is gone: that is its EOF.
func readOutput(o output, fn func(frame byte, p []byte)) {
	buf := make([]byte, 32*1024)
	for {
		n, err := o.r.Read(buf)
		if n > 0 {
			fn(o.frame, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// recvFd receives one file descriptor sent with SCM_RIGHTS.
func recvFd(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("no descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("expected one descriptor")
	}
	// The master is read through Go's poller, so a Close from another
	// goroutine ends a blocked Read.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
