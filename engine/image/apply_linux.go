package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Whiteout names as written by docker and OCI image layers.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	overlayOpaqueXattr = "trusted.overlay.opaque"
)

// Apply unpacks one layer tarball into dir, translating OCI whiteouts into
// overlayfs whiteouts, and returns the number of regular file bytes written.
//
// Layers are untrusted input: every path is resolved by the kernel beneath
// dir (openat2 RESOLVE_BENEATH), so an entry that would leave dir — by "..",
// an absolute name, or through a symlink pointing outside — is refused
// rather than silently redirected, as are hardlinks to outside targets and
// device nodes. Symlinks themselves may point anywhere: they are resolved
// inside the container's root later.
func Apply(ctx context.Context, dir string, r io.Reader) (int64, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	defer unix.Close(root)
	a := &applier{root: root, chown: os.Geteuid() == 0}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.size, fmt.Errorf("apply layer to %s: %w", dir, err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("apply layer to %s: read tar: %v: %w", dir, err, errdefs.ErrInvalidArgument)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, fmt.Errorf("apply layer to %s: entry %q: %w", dir, hdr.Name, err)
		}
	}
	a.restoreDirTimes()
	return a.size, nil
}

type dirTime struct {
	rel   string
	mtime time.Time
}

type applier struct {
	root     int
	chown    bool
	size     int64
	dirTimes []dirTime
}

func refused(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// cleanRel turns a tar name into a path relative to the layer root; "" is
// the root itself.
func cleanRel(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", refused("absolute path")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", refused("nul byte in path")
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", refused("path escapes the layer root")
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// openBeneath opens rel below the root; the kernel refuses any resolution
// (through "..", absolute or relative symlinks) that would leave the root.
func (a *applier) openBeneath(rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(a.root, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.EXDEV) {
		return -1, refused("path %q leads outside the layer root", rel)
	}
	if err != nil {
		return -1, fmt.Errorf("open %q: %w", rel, err)
	}
	return fd, nil
}

// mkdirAll returns an O_PATH descriptor of directory rel, creating missing
// components one at a time, each resolved beneath the root.
func (a *applier) mkdirAll(rel string) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY
	fd, err := a.openBeneath(rel, flags)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	fd, err = a.openBeneath("", flags)
	if err != nil {
		return -1, err
	}
	cur := ""
	for _, c := range strings.Split(rel, "/") {
		cur = path.Join(cur, c)
		next, err := a.openBeneath(cur, flags)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, fmt.Errorf("mkdir %q: %w", cur, err)
			}
			next, err = a.openBeneath(cur, flags)
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanRel(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return refused("layer root must be a directory")
		}
		return a.rootMeta(hdr)
	}
	parent, base := path.Dir(rel), path.Base(rel)
	if parent == "." {
		parent = ""
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parent, base)
	}
	pfd, err := a.mkdirAll(parent)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)

	switch hdr.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := removeAt(pfd, base); err != nil {
				return err
			}
			err = unix.ENOENT
		}
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel: rel, mtime: hdr.ModTime})
		return a.meta(pfd, base, hdr, false)
	case tar.TypeReg:
		if err := removeAt(pfd, base); err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		f := os.NewFile(uintptr(fd), base)
		n, err := io.Copy(f, r)
		a.size += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return a.meta(pfd, base, hdr, true)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return refused("empty symlink target")
		}
		if err := removeAt(pfd, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return a.meta(pfd, base, hdr, false)
	case tar.TypeLink:
		return a.hardlink(pfd, rel, base, hdr.Linkname)
	case tar.TypeFifo:
		if err := removeAt(pfd, base); err != nil {
			return err
		}
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		return a.meta(pfd, base, hdr, true)
	case tar.TypeChar, tar.TypeBlock:
		return refused("device node refused")
	default:
		return refused("unsupported tar entry type %q", string(hdr.Typeflag))
	}
}

func (a *applier) hardlink(pfd int, rel, base, linkname string) error {
	target, err := cleanRel(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "" {
		return refused("hardlink to the layer root")
	}
	if target == rel {
		return nil
	}
	tparent := path.Dir(target)
	if tparent == "." {
		tparent = ""
	}
	tfd, err := a.openBeneath(tparent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	defer unix.Close(tfd)
	if err := removeAt(pfd, base); err != nil {
		return err
	}
	// Flags 0: a link to a symlink links the symlink itself, never what it
	// points to.
	if err := unix.Linkat(tfd, path.Base(target), pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink: %w", err)
	}
	return nil
}

// whiteout turns ".wh.<name>" into an overlay whiteout (a 0/0 character
// device) and ".wh..wh..opq" into an opaque directory.
func (a *applier) whiteout(parent, base string) error {
	if base == whiteoutOpaque {
		pfd, err := a.mkdirAll(parent)
		if err != nil {
			return err
		}
		unix.Close(pfd)
		dfd, err := a.openBeneath(parent, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		if err := unix.Fsetxattr(dfd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (hardlink dirs); nothing to do on overlayfs
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return refused("invalid whiteout")
	}
	pfd, err := a.mkdirAll(parent)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := removeAt(pfd, name); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout: %w", err)
	}
	return nil
}

func (a *applier) rootMeta(hdr *tar.Header) error {
	a.dirTimes = append(a.dirTimes, dirTime{rel: "", mtime: hdr.ModTime})
	return a.meta(a.root, ".", hdr, false)
}

// meta sets ownership, mode, capabilities and times. Order matters: chown
// clears set-id bits and file capabilities, so it comes first.
func (a *applier) meta(pfd int, base string, hdr *tar.Header, times bool) error {
	isLink := hdr.Typeflag == tar.TypeSymlink
	if a.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if !isLink {
		// base was created by us just now (or is a directory we checked)
		// in a directory nobody else writes to, so following is not a risk.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || isLink || !allowedXattr(key) {
			continue
		}
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		// Best effort: the filesystem may not support the namespace.
		_ = unix.Lsetxattr(p, key, []byte(v), 0)
	}
	if times || isLink {
		ts := []unix.Timespec{timespec(hdr.AccessTime, hdr.ModTime), timespec(hdr.ModTime, hdr.ModTime)}
		_ = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW) // best effort
	}
	return nil
}

// allowedXattr keeps file capabilities and user attributes; trusted.* (which
// would let a layer forge overlayfs metadata) and security labels are dropped.
func allowedXattr(key string) bool {
	return key == "security.capability" || strings.HasPrefix(key, "user.")
}

func timespec(t, fallback time.Time) unix.Timespec {
	if t.IsZero() {
		t = fallback
	}
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// restoreDirTimes runs last because creating entries inside a directory
// bumps its mtime.
func (a *applier) restoreDirTimes() {
	for i := len(a.dirTimes) - 1; i >= 0; i-- {
		d := a.dirTimes[i]
		ts := []unix.Timespec{timespec(d.mtime, d.mtime), timespec(d.mtime, d.mtime)}
		if d.rel == "" {
			_ = unix.UtimesNanoAt(a.root, ".", ts, 0)
			continue
		}
		parent := path.Dir(d.rel)
		if parent == "." {
			parent = ""
		}
		pfd, err := a.openBeneath(parent, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			continue
		}
		_ = unix.UtimesNanoAt(pfd, path.Base(d.rel), ts, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
	}
}

// removeAt deletes name in directory dfd, recursing into directories
// without following symlinks; a missing name is not an error.
func removeAt(dfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dfd, name, 0); err != nil {
			return fmt.Errorf("remove %q: %w", name, err)
		}
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	return nil
}
