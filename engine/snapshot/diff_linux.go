package snapshot

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
)

// OCI layer whiteouts, and the overlayfs xattr that marks an opaque
// directory.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	overlayPrefix  = "trusted.overlay."
	opaqueXattr    = "trusted.overlay.opaque"
)

// DiffStats says what a Diff wrote.
type DiffStats struct {
	Entries int   // tar entries, whiteouts included
	Bytes   int64 // of regular file content
}

// Diff writes the changes key's writable layer holds, against the layers
// it was prepared on, as an OCI layer tar: an overlayfs whiteout (a 0/0
// character device) becomes a ".wh.<name>" entry, an opaque directory a
// ".wh..wh..opq" entry inside it. Entries are in lexical order, owners
// numeric, and device nodes and sockets are left out (layers may not carry
// them). The layer must not be mounted for writing while this runs. A
// layer with no changes writes an empty archive and Entries 0.
func (s *Store) Diff(ctx context.Context, key string, w io.Writer) (DiffStats, error) {
	dir, err := s.containerPath(key)
	if err != nil {
		return DiffStats{}, err
	}
	upper := filepath.Join(dir, "upper")
	if _, err := os.Lstat(upper); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return DiffStats{}, fmt.Errorf("diff %q: %w", key, errdefs.ErrNotFound)
		}
		return DiffStats{}, fmt.Errorf("diff %q: %w", key, err)
	}
	d := &differ{ctx: ctx, root: upper, tw: tar.NewWriter(w), links: map[fileID]string{}}
	if err := d.dir(""); err != nil {
		return d.stats, fmt.Errorf("diff %q: %w", key, err)
	}
	if err := d.tw.Close(); err != nil {
		return d.stats, fmt.Errorf("diff %q: %w", key, err)
	}
	return d.stats, nil
}

type fileID struct{ dev, ino uint64 }

type differ struct {
	ctx   context.Context
	root  string
	tw    *tar.Writer
	links map[fileID]string // first name of each hardlinked inode
	stats DiffStats
}

// dir writes the entries below rel ("" is the layer root, which has no
// entry of its own: its metadata is the lower layers').
func (d *differ) dir(rel string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(d.root, rel))
	if err != nil {
		return err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	slices.Sort(names)
	for _, name := range names {
		if err := d.entry(filepath.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) entry(rel string) error {
	p := filepath.Join(d.root, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFCHR && st.Rdev == 0 {
		return d.write(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     filepath.Join(filepath.Dir(rel), whiteoutPrefix+filepath.Base(rel)),
			Mode:     0o644,
			Format:   tar.FormatPAX,
		}, nil)
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
	}
	if x, err := xattrs(p); err != nil {
		return err
	} else if len(x) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range x {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	switch mode {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		if err := d.write(hdr, nil); err != nil {
			return err
		}
		if v, _ := getxattr(p, opaqueXattr); v == "y" {
			wh := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.Join(rel, whiteoutOpaque), Mode: 0o644, Format: tar.FormatPAX}
			if err := d.write(wh, nil); err != nil {
				return err
			}
		}
		return d.dir(rel)
	case unix.S_IFREG:
		id := fileID{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := d.links[id]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return d.write(hdr, nil)
			}
			d.links[id] = rel
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return d.write(hdr, f)
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return d.write(hdr, nil)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return d.write(hdr, nil)
	}
	return nil // devices and sockets: not layer content
}

func (d *differ) write(hdr *tar.Header, body io.Reader) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	d.stats.Entries++
	if body == nil {
		return nil
	}
	n, err := io.CopyN(d.tw, body, hdr.Size)
	d.stats.Bytes += n
	if err != nil {
		return fmt.Errorf("%s: changed while read: %w", hdr.Name, err)
	}
	return nil
}

// xattrs returns the extended attributes a layer carries (overlayfs's own
// are bookkeeping of this store, not content).
func xattrs(p string) (map[string]string, error) {
	names, err := listxattr(p)
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, n := range names {
		if strings.HasPrefix(n, overlayPrefix) {
			continue
		}
		v, err := getxattr(p, n)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[n] = v
	}
	return out, nil
}

func listxattr(p string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		var out []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 128)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENODATA) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("xattr %s of %s: %w", name, p, err)
		}
		return string(buf[:n]), nil
	}
}

// Commit turns key's writable layer into the unpacked layer chainID, so
// that later containers stack on it without unpacking its blob, and
// removes key. Entries Diff leaves out (devices, sockets) and overlayfs
// bookkeeping other than whiteouts and opaque marks are removed first, so
// the layer holds what its blob holds. If chainID is unpacked already the
// writable layer is simply removed. The layer must not be mounted.
func (s *Store) Commit(ctx context.Context, key, chainID string) error {
	h, err := chainHex(chainID)
	if err != nil {
		return err
	}
	dir, err := s.containerPath(key)
	if err != nil {
		return err
	}
	l, err := lockfile.Acquire(ctx, s.path(locksDir, h+".lock"))
	if err != nil {
		return fmt.Errorf("commit %q: %w", key, err)
	}
	defer l.Unlock()
	if !s.HasLayer(chainID) {
		upper := filepath.Join(dir, "upper")
		if err := scrub(upper); err != nil {
			return fmt.Errorf("commit %q: %w", key, err)
		}
		if err := syncfs(upper); err != nil {
			return fmt.Errorf("commit %q: sync: %w", key, err)
		}
		if err := os.Rename(upper, s.path(layersDir, h)); err != nil {
			return fmt.Errorf("commit %q: %w", key, err)
		}
		if err := atomicfile.SyncDir(s.path(layersDir)); err != nil {
			return fmt.Errorf("commit %q: %w", key, err)
		}
	}
	return s.Remove(ctx, key)
}

// scrub removes from a writable layer what a layer directory may not hold.
func scrub(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				return nil // a whiteout
			}
			return os.Remove(p)
		case unix.S_IFBLK, unix.S_IFSOCK:
			return os.Remove(p)
		}
		names, err := listxattr(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, overlayPrefix) && n != opaqueXattr {
				if err := unix.Lremovexattr(p, n); err != nil && !errors.Is(err, unix.ENODATA) {
					return fmt.Errorf("%s: remove xattr %s: %w", p, n, err)
				}
			}
		}
		return nil
	})
}
