package main

import (
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
)

// terminal is the user's terminal while a session (exec -it, attach)
// uses it: in raw mode, its size changes forwarded.
type terminal struct {
	in      *os.File
	saved   *unix.Termios
	winch   chan os.Signal
	Resizes chan runtime.WindowSize
}

// openTerminal puts in (a terminal) into raw mode, so keys reach the
// container as typed (Ctrl-C included), and starts forwarding size
// changes. Restore undoes it.
func openTerminal(in *os.File, out *os.File) (*terminal, error) {
	t := &terminal{in: in, Resizes: make(chan runtime.WindowSize, 1), winch: make(chan os.Signal, 1)}
	saved, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	t.saved = saved
	signal.Notify(t.winch, unix.SIGWINCH)
	go func() {
		for range t.winch {
			if ws, ok := windowSize(out); ok {
				select {
				case t.Resizes <- ws:
				default:
				}
			}
		}
	}()
	return t, nil
}

// Restore gives the terminal back as it was.
func (t *terminal) Restore() {
	signal.Stop(t.winch)
	close(t.winch)
	if t.saved != nil {
		_ = unix.IoctlSetTermios(int(t.in.Fd()), unix.TCSETS, t.saved)
	}
}

// windowSize is w's size, if w is a terminal.
func windowSize(w io.Writer) (runtime.WindowSize, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return runtime.WindowSize{}, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return runtime.WindowSize{}, false
	}
	return runtime.WindowSize{Rows: ws.Row, Cols: ws.Col}, true
}
