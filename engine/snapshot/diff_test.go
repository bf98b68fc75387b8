package snapshot_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/snapshot"
)

// tarEntry is what a test checks of one entry of a diff.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	uid        int
	body       string
	xattr      string
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, tarEntry{name: hdr.Name, link: hdr.Linkname, typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid,
			body: string(body), xattr: hdr.PAXRecords["SCHILY.xattr.user.test"]})
	}
}

// TestDiffAndCommit changes a mounted overlay the way a build step does
// (new, changed, deleted files, a replaced directory, links, an xattr) and
// checks the layer Diff writes and the layer Commit leaves: stacked on the
// same lower layer, the committed layer and the diff unpacked again both
// show what the container saw.
func TestDiffAndCommit(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s, root := openStore(t)
	ctx := t.Context()
	lower := chain(t, "lower")
	if err := s.EnsureLayer(ctx, lower, writeFiles(map[string]string{
		"keep": "k", "change": "old", "gone": "bye", "dir/old": "o", "sub/file": "s",
	})); err != nil {
		t.Fatal(err)
	}
	const key = "diff-step"
	mounts, err := s.Prepare(ctx, key, []string{lower})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	at := func(p string) string { return filepath.Join(target, p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			snapshot.Unmount(target)
			t.Fatal(err)
		}
	}
	must(os.WriteFile(at("change"), []byte("new"), 0o644))
	must(os.Chmod(at("change"), 0o600))
	must(os.Remove(at("gone")))
	must(os.RemoveAll(at("dir")))
	must(os.Mkdir(at("dir"), 0o750))
	must(os.WriteFile(at("dir/new"), []byte("n"), 0o644))
	must(os.WriteFile(at("sub/added"), []byte("a"), 0o644))
	must(os.Chown(at("sub/added"), 1000, 1000))
	must(os.Link(at("sub/added"), at("hard")))
	must(os.Symlink("/etc/passwd", at("link")))
	must(unix.Mkfifo(at("fifo"), 0o600))
	must(unix.Mknod(at("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Lsetxattr(at("sub/added"), "user.test", []byte("v"), 0))
	must(snapshot.Unmount(target))

	var buf bytes.Buffer
	st, err := s.Diff(ctx, key, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := readTar(t, buf.Bytes())
	var names []string
	for _, e := range got {
		names = append(names, e.name)
	}
	// Lexical order of the upper directory's names: ".wh.gone" sorts as "gone".
	wantOrder := []string{"change", "dir/", "dir/.wh..wh..opq", "dir/new", "fifo", ".wh.gone", "hard", "link", "sub/", "sub/added"}
	if !slices.Equal(names, wantOrder) {
		t.Errorf("diff entries = %q, want %q", names, wantOrder)
	}
	if st.Entries != len(got) || st.Bytes != int64(len("new")+len("n")+len("a")) {
		t.Errorf("stats = %+v for %d entries", st, len(got))
	}
	byName := map[string]tarEntry{}
	for _, e := range got {
		byName[e.name] = e
	}
	if e := byName["change"]; e.body != "new" || e.mode != 0o600 {
		t.Errorf("change = %+v", e)
	}
	if e := byName["sub/added"]; e.uid != 1000 || e.xattr != "v" {
		t.Errorf("sub/added = %+v, want uid 1000 and xattr user.test", e)
	}
	if e := byName["hard"]; e.typ != tar.TypeLink || e.link != "sub/added" {
		// "hard" sorts before "sub/added": whichever comes first is the file.
		if e.typ != tar.TypeReg || byName["sub/added"].typ != tar.TypeLink {
			t.Errorf("hard = %+v, sub/added = %+v: want one hardlink to the other", e, byName["sub/added"])
		}
	}
	if e := byName["link"]; e.typ != tar.TypeSymlink || e.link != "/etc/passwd" {
		t.Errorf("link = %+v", e)
	}
	if e := byName["dir/"]; e.typ != tar.TypeDir || e.mode != 0o750 {
		t.Errorf("dir = %+v", e)
	}

	// The same changes, committed and unpacked from the diff, seen on top of
	// the lower layer.
	committed := chain(t, "committed")
	if err := s.Commit(ctx, key, committed); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "containers", key)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("writable layer still there after Commit: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "layers", strings.TrimPrefix(committed, "sha256:"), "null")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("device node kept in the committed layer: %v", err)
	}
	unpacked := chain(t, "unpacked")
	if err := s.EnsureLayer(ctx, unpacked, func(dir string) error {
		_, err := image.Apply(ctx, dir, bytes.NewReader(buf.Bytes()))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{committed, unpacked} {
		view := "view-" + top[len(top)-6:]
		m, err := s.Prepare(ctx, view, []string{lower, top})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "view")
		if err := snapshot.MountAll(m, dir); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{
			"keep": "k", "change": "new", "dir/new": "n", "sub/file": "s", "sub/added": "a", "hard": "a",
			"gone":    "<open " + filepath.Join(dir, "gone") + ": no such file or directory>",
			"dir/old": "<open " + filepath.Join(dir, "dir/old") + ": no such file or directory>",
		} {
			if got := read(t, filepath.Join(dir, name)); got != want {
				t.Errorf("%s: %s = %q, want %q", top, name, got, want)
			}
		}
		if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "/etc/passwd" {
			t.Errorf("%s: link = %q, %v", top, l, err)
		}
		snapshot.Unmount(dir)
		s.Remove(ctx, view)
	}

	if _, err := s.Diff(ctx, "absent", io.Discard); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Diff of an absent layer: %v", err)
	}
}

// TestPrepareScratch: a writable layer on no layers is a bind mount of
// itself, and its diff is everything written to it.
func TestPrepareScratch(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s, _ := openStore(t)
	ctx := t.Context()
	mounts, err := s.Prepare(ctx, "scratch", nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644)
	snapshot.Unmount(target)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Diff(ctx, "scratch", &buf); err != nil {
		t.Fatal(err)
	}
	if got := readTar(t, buf.Bytes()); len(got) != 1 || got[0].name != "f" || got[0].body != "x" {
		t.Errorf("diff = %+v", got)
	}
}
