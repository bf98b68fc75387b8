package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-dev/berth/engine/container"
)

// SyncFile is one change a watch copies into a running container: the
// host's Source to the container's Target, or, with Source "", the
// removal of Target.
type SyncFile struct {
	Source, Target string
}

// SyncFiles applies changes to a running container's root filesystem, as
// docker compose watch's sync does: a file or directory is copied (a
// directory with its content), owned by the container's user; a symlink
// stays a link. Targets resolve inside the container's root.
func (e *Engine) SyncFiles(ctx context.Context, id string, files []SyncFile) error {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if !info.Running() {
		return fmt.Errorf("container %s is not running: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	rootfs := e.rootfsDir(info.ID)
	uid, gid, _, err := container.ResolveUser(rootfs, info.Config.User)
	if err != nil {
		return fmt.Errorf("container %s: %w", info.Name, err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !path.IsAbs(f.Target) {
			return fmt.Errorf("sync to %q: not an absolute path: %w", f.Target, errdefs.ErrInvalidArgument)
		}
		dst, err := securejoin.SecureJoin(rootfs, f.Target)
		if err != nil {
			return err
		}
		if f.Source == "" {
			if err := os.RemoveAll(dst); err != nil {
				return fmt.Errorf("container %s: remove %s: %w", info.Name, f.Target, err)
			}
			continue
		}
		if err := syncPath(rootfs, f.Source, f.Target, int(uid), int(gid)); err != nil {
			return fmt.Errorf("container %s: sync %s: %w", info.Name, f.Target, err)
		}
	}
	return nil
}

// syncPath copies src (a file, link or directory tree) to target inside
// rootfs; a file is written beside its target and renamed over it, so
// the container never reads half of one.
func syncPath(rootfs, src, target string, uid, gid int) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone since the change was seen: a later batch removes it
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst, err := securejoin.SecureJoin(rootfs, path.Join(target, filepath.ToSlash(rel)))
		if err != nil {
			return err
		}
		if err := mkdirOwned(rootfs, filepath.Dir(dst), uid, gid); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if st, err := os.Lstat(dst); err == nil && !st.IsDir() {
				os.Remove(dst)
			}
			if err := os.Mkdir(dst, info.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return os.Lchown(dst, uid, gid)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.RemoveAll(dst)
			if err := os.Symlink(l, dst); err != nil {
				return err
			}
			return os.Lchown(dst, uid, gid)
		case info.Mode().IsRegular():
			return replaceFile(p, dst, info.Mode().Perm(), uid, gid)
		}
		return nil
	})
}

func replaceFile(src, dst string, mode fs.FileMode, uid, gid int) error {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".berth-sync-")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Lchown(tmp.Name(), uid, gid)
	}
	if err == nil {
		if st, serr := os.Lstat(dst); serr == nil && st.IsDir() {
			os.RemoveAll(dst)
		}
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// mkdirOwned creates dir's missing parents inside rootfs (dir is resolved
// already, so it holds no symlink), owned by the container's user.
func mkdirOwned(rootfs, dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	rel, err := filepath.Rel(rootfs, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is outside the container's root: %w", dir, errdefs.ErrInvalidArgument)
	}
	cur := rootfs
	for _, c := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, c)
		if _, err := os.Lstat(cur); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
			if err := os.Lchown(cur, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}
