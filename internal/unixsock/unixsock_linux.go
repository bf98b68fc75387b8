// Package unixsock listens on and dials unix sockets whose paths may be
// longer than sun_path allows.
package unixsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxPath is sun_path's size less the terminating NUL.
const maxPath = 107

// withShortPath calls fn with a path that names the same socket file but
// fits in sun_path: deep state roots (tests, long $BERTH_RUN) would overflow
// it. The directory is reached through /proc/self/fd, so the socket itself
// stays in its root-only directory.
func withShortPath(path string, fn func(string) error) error {
	if len(path) <= maxPath {
		return fn(path)
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}

// Listen listens on the unix socket at path. Closing the listener does not
// remove the file: its owner does.
func Listen(path string) (*net.UnixListener, error) {
	var l net.Listener
	err := withShortPath(path, func(p string) error {
		var err error
		l, err = net.Listen("unix", p)
		return err
	})
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	// The listener would unlink its short alias on close, not the file.
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

// Dial connects to the unix socket at path.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var c net.Conn
	err := withShortPath(path, func(p string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}
