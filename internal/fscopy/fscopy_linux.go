// Package fscopy copies file trees in and out of a root directory as tar
// streams (what berth cp moves), resolving every path inside the root, so
// neither a path nor a symlink, however it changes underneath, leads out.
package fscopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Stat is what a copy needs to know of a path.
type Stat struct {
	Exists bool
	Dir    bool
}

// StatPath looks at p inside root, following symlinks inside the root.
func StatPath(root *os.File, p string) (Stat, error) {
	h, err := pathrs.OpenatInRoot(root, p)
	if errors.Is(err, os.ErrNotExist) {
		return Stat{}, nil
	}
	if err != nil {
		return Stat{}, inRootError(p, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return Stat{}, err
	}
	return Stat{Exists: true, Dir: st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
}

func inRootError(p string, err error) error {
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%s: %v: %w", p, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// ArchiveOptions shape an archive.
type ArchiveOptions struct {
	// Name is the archive's top entry; empty archives a directory's
	// contents at the top (cp's "dir/.").
	Name string
	// FollowLink archives what a final symlink points to (inside the
	// root) instead of the link.
	FollowLink bool
}

// Archive writes p, inside root, as a tar stream to w: a file, a symlink,
// or a directory and everything under it. Links under p are archived as
// links, never followed.
func Archive(root *os.File, p string, o ArchiveOptions, w io.Writer) error {
	h, err := openNoFollow(root, p, o.FollowLink)
	if err != nil {
		return err
	}
	defer h.Close()
	tw := tar.NewWriter(w)
	if o.Name == "" {
		err = archiveChildren(tw, h, "")
	} else {
		err = archiveOne(tw, h, o.Name)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// openNoFollow opens an O_PATH handle on p inside root; its final
// component is not followed unless follow.
func openNoFollow(root *os.File, p string, follow bool) (*os.File, error) {
	if follow {
		h, err := pathrs.OpenatInRoot(root, p)
		if err != nil {
			return nil, inRootError(p, err)
		}
		return h, nil
	}
	dir, base := path.Split(path.Clean("/" + p))
	parent, err := pathrs.OpenatInRoot(root, dir)
	if err != nil {
		return nil, inRootError(p, err)
	}
	defer parent.Close()
	if base == "" {
		return pathrs.Reopen(parent, unix.O_PATH|unix.O_DIRECTORY)
	}
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func archiveOne(tw *tar.Writer, h *os.File, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		return archiveChildren(tw, h, name+"/")
	case unix.S_IFREG:
		f, err := pathrs.Reopen(h, unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, st.Size)
		return err
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(h.Fd()), "", buf)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
		return tw.WriteHeader(hdr)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return tw.WriteHeader(hdr)
	}
	return nil // devices and sockets are not copied
}

func archiveChildren(tw *tar.Writer, dir *os.File, prefix string) error {
	d, err := pathrs.Reopen(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // gone meanwhile
		}
		if err != nil {
			return err
		}
		child := os.NewFile(uintptr(fd), n)
		err = archiveOne(tw, child, prefix+n)
		child.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ExtractOptions shape an extraction.
type ExtractOptions struct {
	// Rename gives the archive's top entry (the first component of every
	// name) another name.
	Rename string
	// KeepOwner keeps the archive's owners (cp -a); otherwise what is
	// extracted belongs to UID and GID.
	KeepOwner bool
	UID, GID  int
}

// Extract unpacks the tar stream r into dir, inside root. Every entry is
// created through handles resolved inside root: an entry that names a
// path out of it, or goes through a symlink out of it, lands inside or
// fails. Device nodes are refused.
func Extract(root *os.File, dir string, r io.Reader, o ExtractOptions) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name, err := entryName(hdr.Name, o.Rename)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		if err := extractOne(root, dir, name, hdr, tr, o); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
}

// entryName cleans an archive name (relative, no way up) and renames its
// first component.
func entryName(name, rename string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("archive entry %q leads out of its directory: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	clean := path.Clean("/" + name)[1:]
	if rename != "" && clean != "" {
		_, rest, _ := strings.Cut(clean, "/")
		clean = path.Join(rename, rest)
	}
	return clean, nil
}

func extractOne(root *os.File, dir, name string, hdr *tar.Header, r io.Reader, o ExtractOptions) error {
	p := path.Join(dir, name)
	mode := uint32(hdr.Mode & 0o7777)
	uid, gid := o.UID, o.GID
	if o.KeepOwner {
		uid, gid = hdr.Uid, hdr.Gid
	}
	if hdr.Typeflag == tar.TypeDir {
		h, err := pathrs.MkdirAllHandle(root, p, 0o755)
		if err != nil {
			return inRootError(p, err)
		}
		defer h.Close()
		d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer d.Close()
		return finish(d, uid, gid, mode, time.Time{})
	}
	parentDir, base := path.Split(p)
	parent, err := pathrs.MkdirAllHandle(root, parentDir, 0o755)
	if err != nil {
		return inRootError(p, err)
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	// What is there goes first (as tar does), unless it is a directory.
	if err := unix.Unlinkat(pfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EISDIR) {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		return finish(f, uid, gid, mode, hdr.ModTime)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		return unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		// The target is an entry of the same archive, so it lies under
		// the same directory.
		target, err := entryName(hdr.Linkname, o.Rename)
		if err != nil {
			return err
		}
		t, err := openNoFollow(root, path.Join(dir, target), false)
		if err != nil {
			return err
		}
		defer t.Close()
		return unix.Linkat(int(t.Fd()), "", pfd, base, unix.AT_EMPTY_PATH)
	case tar.TypeFifo:
		if err := unix.Mkfifoat(pfd, base, mode&0o777); err != nil {
			return err
		}
		return unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("device nodes are not copied: %w", errdefs.ErrInvalidArgument)
	}
	return nil // other types (global headers, ...) carry nothing to create
}

// finish sets owner, mode and (unless zero) times of what was just made,
// through its own descriptor. Ownership goes first: a chown clears the
// setuid bits the mode then restores.
func finish(f *os.File, uid, gid int, mode uint32, mtime time.Time) error {
	if err := unix.Fchown(int(f.Fd()), uid, gid); err != nil {
		return err
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return err
	}
	if mtime.IsZero() {
		return nil
	}
	tv := unix.NsecToTimeval(mtime.UnixNano())
	return unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
}
