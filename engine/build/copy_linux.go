package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

func owner(info fs.FileInfo) (int, int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// copyOpts are a COPY's or ADD's flags, resolved.
type copyOpts struct {
	uid, gid int          // owner of what is written, with chown
	chown    bool         // --chown given
	chmod    *fs.FileMode // --chmod given
}

// copier writes files into a mounted root filesystem. Every destination
// path is resolved inside the root (its symlinks are the image's).
type copier struct {
	rootfs string
	opts   copyOpts
}

// dest resolves a path of the image to one on the host.
func (c *copier) dest(p string) (string, error) {
	return securejoin.SecureJoin(c.rootfs, p)
}

// mkdirAll creates directory p of the image and its missing parents, new
// ones owned by the chown owner, as BuildKit does.
func (c *copier) mkdirAll(p string) error {
	cur := "/"
	for _, comp := range strings.Split(strings.Trim(path.Clean(p), "/"), "/") {
		if comp == "" {
			continue
		}
		cur = path.Join(cur, comp)
		host, err := c.dest(cur)
		if err != nil {
			return err
		}
		st, err := os.Stat(host)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s: not a directory: %w", cur, errdefs.ErrInvalidArgument)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Mkdir(host, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(host, c.opts.uid, c.opts.gid); err != nil {
			return err
		}
	}
	return nil
}

// isDir reports whether image path p is an existing directory.
func (c *copier) isDir(p string) bool {
	host, err := c.dest(p)
	if err != nil {
		return false
	}
	st, err := os.Stat(host)
	return err == nil && st.IsDir()
}

// copyTree copies f of t (a file, or a directory's content) to image path
// dst: a directory's content goes into dst, a file becomes dst.
func (c *copier) copyTree(t *tree, f file, dst string, excl *patternmatcher.PatternMatcher) error {
	var dirs []dirTime
	err := t.walk(f, excl, func(sub, abs string, info fs.FileInfo) error {
		target := dst
		if sub != "" {
			target = path.Join(dst, filepath.ToSlash(sub))
		}
		if info.IsDir() {
			if err := c.mkdirAll(target); err != nil {
				return err
			}
			if sub == "" {
				return nil // a directory's content is copied, not the directory
			}
			host, err := c.dest(target)
			if err != nil {
				return err
			}
			dirs = append(dirs, dirTime{host, info})
			return c.meta(host, info, t.owners)
		}
		if err := c.mkdirAll(path.Dir(target)); err != nil {
			return err
		}
		host, err := c.dest(target)
		if err != nil {
			return err
		}
		// Replace whatever is there; a directory in the way is an error,
		// as in Docker.
		if st, err := os.Lstat(host); err == nil {
			if st.IsDir() {
				return fmt.Errorf("cannot replace directory %s with a file: %w", target, errdefs.ErrInvalidArgument)
			}
			if err := os.Remove(host); err != nil {
				return err
			}
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, host); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(abs, host); err != nil {
				return err
			}
		case info.Mode()&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(host, 0o600); err != nil {
				return err
			}
		default:
			return nil // devices and sockets are not copied
		}
		return c.meta(host, info, t.owners)
	})
	if err != nil {
		return err
	}
	// Directory times last: writing inside a directory changes its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		mt := dirs[i].info.ModTime()
		_ = os.Chtimes(dirs[i].host, mt, mt)
	}
	return nil
}

type dirTime struct {
	host string
	info fs.FileInfo
}

// meta sets owner, mode and times of a copied entry.
func (c *copier) meta(host string, info fs.FileInfo, keepOwner bool) error {
	uid, gid := 0, 0
	if keepOwner {
		uid, gid = owner(info)
	}
	if c.opts.chown {
		uid, gid = c.opts.uid, c.opts.gid
	}
	if err := os.Lchown(host, uid, gid); err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		mt := info.ModTime()
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	mode := info.Mode().Perm() | info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if c.opts.chmod != nil {
		mode = *c.opts.chmod
	}
	if err := os.Chmod(host, mode); err != nil {
		return err
	}
	mt := info.ModTime()
	return os.Chtimes(host, mt, mt)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFile writes content (a heredoc or a download) to image path dst.
func (c *copier) writeFile(dst string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	if err := c.mkdirAll(path.Dir(dst)); err != nil {
		return err
	}
	host, err := c.dest(dst)
	if err != nil {
		return err
	}
	if st, err := os.Lstat(host); err == nil {
		if st.IsDir() {
			return fmt.Errorf("cannot replace directory %s with a file: %w", dst, errdefs.ErrInvalidArgument)
		}
		os.Remove(host)
	}
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if c.opts.chmod != nil {
		mode = *c.opts.chmod
	}
	if err := os.Lchown(host, c.opts.uid, c.opts.gid); err != nil {
		return err
	}
	if err := os.Chmod(host, mode); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return os.Chtimes(host, mtime, mtime)
	}
	return nil
}
