package fscopy

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func openRoot(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveAndExtractATree(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	write(t, filepath.Join(src, "app", "conf", "a.txt"), "alpha")
	write(t, filepath.Join(src, "app", "b.txt"), "beta")
	os.Symlink("/etc/passwd", filepath.Join(src, "app", "link"))
	syscall.Mkfifo(filepath.Join(src, "app", "fifo"), 0o600)
	var buf bytes.Buffer
	if err := Archive(openRoot(t, src), "/app", ArchiveOptions{Name: "app"}, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	if err := Extract(openRoot(t, dst), "/out", bytes.NewReader(buf.Bytes()), ExtractOptions{Rename: "copy", UID: uid, GID: gid}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "out", "copy", "conf", "a.txt")); string(b) != "alpha" {
		t.Fatalf("a.txt: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "out", "copy", "link")); l != "/etc/passwd" {
		t.Fatalf("the link was not kept as a link: %q", l)
	}
	if st, err := os.Lstat(filepath.Join(dst, "out", "copy", "b.txt")); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("b.txt: %v %v", st, err)
	}
	if st, err := os.Lstat(filepath.Join(dst, "out", "copy", "fifo")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("fifo: %v %v", st, err)
	}

	// Contents only ("dir/."), and a link followed inside the root.
	buf.Reset()
	if err := Archive(openRoot(t, src), "/app/conf", ArchiveOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, buf.Bytes())
	if strings.Join(names, ",") != "a.txt" {
		t.Fatalf("contents archive: %v", names)
	}
	os.Symlink("/app/b.txt", filepath.Join(src, "abs"))
	buf.Reset()
	if err := Archive(openRoot(t, src), "abs", ArchiveOptions{Name: "abs", FollowLink: true}, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	if h, err := tr.Next(); err != nil || h.Typeflag != tar.TypeReg || h.Size != 4 {
		t.Fatalf("followed link (absolute, inside the root): %+v %v", h, err)
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return out
		}
		out = append(out, h.Name)
	}
}

func hostile(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// Nothing an archive says can write outside the root: not a path with
// .., not a symlink to / or out of the root (made by the archive, or
// already there), not a hard link to a file outside.
func TestExtractStaysInsideTheRoot(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	os.MkdirAll(root, 0o755)
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	write(t, filepath.Join(outside, "secret"), "keep")
	os.Symlink(outside, filepath.Join(root, "planted"))
	uid, gid := os.Getuid(), os.Getgid()
	o := ExtractOptions{UID: uid, GID: gid}

	err := Extract(openRoot(t, root), "/", bytes.NewReader(hostile(t, &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})), o)
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("../escape: %v", err)
	}
	for _, tc := range [][]*tar.Header{
		// A symlink to / made by the archive, then a file through it.
		{{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "/"}, {Name: "up" + outside + "/secret", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644}},
		// Through the planted link.
		{{Name: "planted/secret", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644}},
		// A relative link up and out.
		{{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../.." + outside}, {Name: "rel/secret", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644}},
	} {
		_ = Extract(openRoot(t, root), "/", bytes.NewReader(hostile(t, tc...)), o)
		if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "keep" {
			t.Fatalf("%s wrote outside the root: %q", tc[len(tc)-1].Name, b)
		}
	}
	// A hard link to a file outside, through the planted link: refused or
	// confined, never a link to the outside file.
	_ = Extract(openRoot(t, root), "/", bytes.NewReader(hostile(t, &tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "planted/secret"})), o)
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(outside, "secret"), &st)
	if st.Nlink != 1 {
		t.Fatalf("a hard link to a file outside the root was made")
	}
	if err := Extract(openRoot(t, root), "/", bytes.NewReader(hostile(t, &tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})), o); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("device node: %v", err)
	}
}

func TestStatPathResolvesInsideTheRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "abs"))
	st, err := StatPath(openRoot(t, root), "/abs")
	if err != nil || !st.Exists || !st.Dir {
		t.Fatalf("abs: %+v %v", st, err)
	}
	if st, err := StatPath(openRoot(t, root), "/nope"); err != nil || st.Exists {
		t.Fatalf("nope: %+v %v", st, err)
	}
}
