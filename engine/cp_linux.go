package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/fscopy"
)

// containerFS is a container's file system as a copy sees it: the root,
// and where the container's volumes and binds live when it does not run.
type containerFS struct {
	root    *os.File
	mounts  []mountRoot // stopped containers only, longest target first
	release func()
	// name and readOnly (read_only: true) of a stopped container: while
	// it runs, the kernel refuses writes where the container may not.
	name     string
	readOnly bool
}

type mountRoot struct {
	target   string
	root     *os.File
	readOnly bool
}

// openFS opens a container's file system. A running container's is its
// init's root (/proc/PID/root): what its processes see, volumes and tmpfs
// included. A stopped container's root filesystem is mounted for the copy
// (with the container's lock held, so no start races it), and paths under
// its volumes and binds lead to them.
func (e *Engine) openFS(ctx context.Context, id string) (*containerFS, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if info.Running() && info.Status.Pid > 0 {
		root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", info.Status.Pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return &containerFS{root: root, release: func() { root.Close() }}, nil
		}
		// It exited meanwhile: copy as from a stopped container.
	}
	l, err := e.lockContainer(ctx, info.ID)
	if err != nil {
		return nil, err
	}
	fs, err := e.openStoppedFS(ctx, info.Container)
	if err != nil {
		l.Unlock()
		return nil, err
	}
	release := fs.release
	fs.release = func() { release(); l.Unlock() }
	return fs, nil
}

func (e *Engine) openStoppedFS(ctx context.Context, c container.Container) (*containerFS, error) {
	info, err := e.info(ctx, c, true)
	if err != nil {
		return nil, err
	}
	if info.Running() {
		return nil, fmt.Errorf("container %s started while the copy began; try again", c.Name)
	}
	img, err := e.Images.Get(ctx, c.Config.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image of container %s: %w", c.Name, err)
	}
	mounts, err := e.Snapshots.Prepare(ctx, c.ID, img.ChainIDs)
	if err != nil {
		return nil, err
	}
	// The mount goes where a start mounts it: a crash mid-copy leaves what
	// the next start or rm already knows to clean up.
	dir := e.rootfsDir(c.ID)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return nil, err
	}
	fs := &containerFS{name: c.Name, readOnly: c.Config.Security.ReadOnly}
	fs.release = func() {
		for _, m := range fs.mounts {
			m.root.Close()
		}
		if fs.root != nil {
			fs.root.Close()
		}
		if snapshot.Unmount(dir) == nil {
			os.Remove(dir)
		}
	}
	if fs.root, err = os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		fs.release()
		return nil, err
	}
	for _, m := range c.Config.Mounts {
		var src string
		switch m.Type {
		case "volume":
			v, err := e.Volumes.Get(ctx, m.Source)
			if err != nil {
				continue
			}
			if src, err = securejoin.SecureJoin(v.Mountpoint, m.SubPath); err != nil {
				continue
			}
		case "bind":
			src = m.Source
		default:
			continue // a tmpfs holds nothing while the container is down
		}
		r, err := os.OpenFile(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // a file bind, or gone: the root filesystem answers
		}
		fs.mounts = append(fs.mounts, mountRoot{target: path.Clean("/" + m.Target), root: r, readOnly: m.ReadOnly})
	}
	// The deepest mount covering a path wins.
	slices.SortFunc(fs.mounts, func(a, b mountRoot) int { return len(b.target) - len(a.target) })
	return fs, nil
}

// resolve says which root holds p, p relative to it, and whether the
// container may not write there.
func (fs *containerFS) resolve(p string) (*os.File, string, bool) {
	clean := path.Clean("/" + p)
	for _, m := range fs.mounts {
		if clean == m.target || strings.HasPrefix(clean, m.target+"/") {
			return m.root, "/" + strings.TrimPrefix(clean[len(m.target):], "/"), m.readOnly
		}
	}
	return fs.root, clean, fs.readOnly
}

// StatContainerPath looks at a path in a container, running or not.
func (e *Engine) StatContainerPath(ctx context.Context, id, p string) (fscopy.Stat, error) {
	fs, err := e.openFS(ctx, id)
	if err != nil {
		return fscopy.Stat{}, err
	}
	defer fs.release()
	root, rel, _ := fs.resolve(p)
	return fscopy.StatPath(root, rel)
}

// CopyFromContainer writes a path of a container, running or not, as a
// tar stream to w (see fscopy.Archive). Nothing it follows leaves the
// container's root.
func (e *Engine) CopyFromContainer(ctx context.Context, id, p string, o fscopy.ArchiveOptions, w io.Writer) error {
	fs, err := e.openFS(ctx, id)
	if err != nil {
		return err
	}
	defer fs.release()
	root, rel, _ := fs.resolve(p)
	return fscopy.Archive(root, rel, o, w)
}

// CopyToContainer extracts the tar stream r into the directory dir of a
// container, running or not (see fscopy.Extract). No entry lands outside
// the container's root.
func (e *Engine) CopyToContainer(ctx context.Context, id, dir string, r io.Reader, o fscopy.ExtractOptions) error {
	fs, err := e.openFS(ctx, id)
	if err != nil {
		return err
	}
	defer fs.release()
	root, rel, readOnly := fs.resolve(dir)
	if readOnly {
		return fmt.Errorf("container %s: %s is read-only: %w", fs.name, dir, errdefs.ErrFailedPrecondition)
	}
	return fscopy.Extract(root, rel, r, o)
}
