package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// useTestdata copies e2e/testdata/<TestName>/ into the project directory.
func (e *env) useTestdata() {
	e.t.Helper()
	copyTree(e.t, filepath.Join("testdata", strings.ReplaceAll(e.t.Name(), "/", "_")), e.dir)
}

// pty is a pseudo-terminal the test drives, as a user at a terminal would.
type pty struct {
	master, slave *os.File
	out           lockedBuffer
	done          chan struct{}
}

func openPty(t *testing.T, rows, cols uint16) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	p := &pty{master: m, slave: s, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		io.Copy(&p.out, m)
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

// run starts berth with the terminal as its stdin, stdout and stderr.
func (p *pty) run(e *env, args ...string) *exec.Cmd {
	e.t.Helper()
	c := e.cmd(e.t.Context(), args...)
	c.Stdin, c.Stdout, c.Stderr = p.slave, p.slave, p.slave
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// typeText types s once berth has put the terminal in raw mode: typed
// earlier, the terminal itself would echo it (and a waitOutput would find
// the echo) and eat Ctrl-Q as flow control.
func (p *pty) typeText(t *testing.T, s string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		if err != nil {
			return err
		}
		if tio.Lflag&(unix.ICANON|unix.ECHO) != 0 {
			return fmt.Errorf("the terminal is not raw yet")
		}
		return nil
	})
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitOutput waits until the terminal has shown want.
func (p *pty) waitOutput(t *testing.T, want string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if !strings.Contains(p.out.String(), want) {
			return fmt.Errorf("terminal shows %q, waiting for %q", p.out.String(), want)
		}
		return nil
	})
}

// lockedBuffer collects output another goroutine writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shellInTerminal runs berth args (a shell) in a 31x97 terminal, checks
// the shell has a terminal of that size, that it follows a resize, runs
// what is typed, and that berth passes on the exit code it ends with.
func shellInTerminal(t *testing.T, e *env, code int, args ...string) {
	t.Helper()
	p := openPty(t, 31, 97)
	c := p.run(e, args...)
	p.typeText(t, "tty; stty size; echo $((6*7))\n")
	p.waitOutput(t, "/dev/pts/")
	p.waitOutput(t, "31 97")
	p.waitOutput(t, "42")
	// A resize of berth's terminal reaches the process's (the shell
	// looks until it does: berth hears of it by SIGWINCH).
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	p.typeText(t, `for i in $(seq 50); do s=$(stty size); [ "$s" = "40 120" ] && break; sleep 0.1; done; echo "resized to $s"`+"\n")
	p.waitOutput(t, "resized to 40 120")
	p.typeText(t, fmt.Sprintf("exit %d\n", code))
	if got := exitCodeOf(t, c); got != code {
		t.Fatalf("berth %v: exit code %d, want %d; terminal:\n%s", args, got, code, p.out.String())
	}
}

// exitCodeOf waits for c and returns its exit code.
func exitCodeOf(t *testing.T, c *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		// Its goroutines go to its stderr (the terminal, which the
		// caller shows when the code is not the one it wants).
		c.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
		t.Errorf("berth did not exit within a minute")
		return -1
	}
	return c.ProcessState.ExitCode()
}
