// Package fswatch reports changes below a directory tree with inotify,
// debounced: editors that save by writing a temporary file and renaming
// it, or build tools that touch many files, give one batch of paths.
package fswatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const events = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_DELETE | unix.IN_ATTRIB |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// Watcher watches directory trees.
type Watcher struct {
	f     *os.File // non-blocking: Close wakes a Read
	fd    int
	mu    sync.Mutex
	dirs  map[int]string // watch descriptor -> directory
	skip  func(path string) bool
	quiet time.Duration
}

// New watches roots (directories, or files: their directory is watched
// and only they are reported) and everything below them that skip does
// not exclude. A batch is sent once no change came for quiet.
func New(roots []string, skip func(path string) bool, quiet time.Duration) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if skip == nil {
		skip = func(string) bool { return false }
	}
	w := &Watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, dirs: map[int]string{}, skip: skip, quiet: quiet}
	for _, r := range roots {
		st, err := os.Stat(r)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", r, err)
		}
		if !st.IsDir() {
			if err := w.add(filepath.Dir(r)); err != nil {
				w.Close()
				return nil, err
			}
			continue
		}
		if err := w.addTree(r); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

func (w *Watcher) add(dir string) error {
	wd, err := unix.InotifyAddWatch(w.fd, dir, events|unix.IN_ONLYDIR)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil // gone already
		}
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.mu.Lock()
	w.dirs[wd] = dir
	w.mu.Unlock()
	return nil
}

// addTree watches dir and its subdirectories.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && w.skip(p) {
			return filepath.SkipDir
		}
		return w.add(p)
	})
}

// Close stops watching; Run returns.
func (w *Watcher) Close() error { return w.f.Close() }

// Run sends batches of changed paths (sorted, each once) until ctx ends
// or the watcher is closed. Paths that skip excludes are left out; a new
// directory is watched and reported with everything in it.
func (w *Watcher) Run(ctx context.Context, out chan<- []string) error {
	raw := make(chan string, 256)
	errc := make(chan error, 1)
	go func() { errc <- w.read(raw) }()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	pending := map[string]bool{}
	var timer <-chan time.Time
	for {
		select {
		case p, ok := <-raw:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return <-errc
			}
			pending[p] = true
			timer = time.After(w.quiet)
		case <-timer:
			timer = nil
			batch := make([]string, 0, len(pending))
			for p := range pending {
				batch = append(batch, p)
			}
			clear(pending)
			slices.Sort(batch)
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// read decodes inotify events into paths until the descriptor closes.
func (w *Watcher) read(raw chan<- string) error {
	defer close(raw)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.mu.Lock()
			dir, ok := w.dirs[int(ev.Wd)]
			if ev.Mask&unix.IN_IGNORED != 0 {
				delete(w.dirs, int(ev.Wd))
			}
			w.mu.Unlock()
			if !ok || name == "" {
				continue
			}
			p := filepath.Join(dir, name)
			if w.skip(p) {
				continue
			}
			raw <- p
			if ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				// A new directory: watch it, and report what is in it
				// already (it may have filled before the watch).
				_ = w.addTree(p)
				_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
					if err == nil && q != p && !w.skip(q) {
						raw <- q
					}
					return nil
				})
			}
		}
	}
}
