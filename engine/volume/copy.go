package volume

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

type inode struct{ dev, ino uint64 }

// copyTree copies the directory tree at src into the existing directory dst,
// keeping modes, owners, modification times, symlinks and hard links. It
// never follows a symlink: the tree comes from an untrusted image.
func copyTree(ctx context.Context, src, dst string) error {
	links := map[inode]string{}
	type dirMeta struct {
		path string
		st   *syscall.Stat_t
	}
	var dirs []dirMeta
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", path)
		}
		switch mode := fi.Mode(); {
		case mode.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			// Modes and times of directories are applied after their
			// content, since adding entries changes a directory's mtime.
			dirs = append(dirs, dirMeta{target, st})
			return nil
		case mode.IsRegular():
			key := inode{uint64(st.Dev), st.Ino}
			if st.Nlink > 1 {
				if first, ok := links[key]; ok {
					return os.Link(first, target)
				}
				links[key] = target
			}
			if err := copyFile(path, target); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			dest, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(dest, target); err != nil {
				return err
			}
		case mode&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(target, 0o600); err != nil {
				return fmt.Errorf("mkfifo %s: %w", target, err)
			}
		default:
			// Device nodes and sockets are not copied: a volume must not
			// become a way to smuggle device access into a container, and a
			// socket is meaningless without its listener.
			return nil
		}
		return applyMeta(target, st, fi.Mode()&fs.ModeSymlink != 0)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := applyMeta(dirs[i].path, dirs[i].st, false); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// applyMeta sets owner, then mode (chown clears set-id bits), then times.
func applyMeta(path string, st *syscall.Stat_t, symlink bool) error {
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if !symlink {
		// Permission, set-id and sticky bits straight from the stat mode.
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	ts := []unix.Timespec{
		unix.NsecToTimespec(syscall.TimespecToNsec(st.Atim)),
		unix.NsecToTimespec(syscall.TimespecToNsec(st.Mtim)),
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimes %s: %w", path, err)
	}
	return nil
}
