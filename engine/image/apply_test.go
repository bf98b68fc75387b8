package image_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/image"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: Apply sets ownership, creates overlay whiteouts and trusted.* xattrs")
	}
}

// ent is one tar entry of a test layer.
type ent struct {
	typ      byte
	name     string
	link     string
	body     string
	mode     int64
	uid, gid int
	mtime    time.Time
	major    int64
}

func buildTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{
			Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: mode,
			Uid: e.uid, Gid: e.gid, ModTime: e.mtime, Devmajor: e.major,
			Size: int64(len(e.body)), Format: tar.FormatPAX,
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox makes <base>/a/b/root as the target so escapes by "../" or through
// symlinks land inside base, where snapshot can see them.
func sandbox(t testing.TB) (base, root string) {
	base = t.TempDir()
	root = filepath.Join(base, "a", "b", "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "victim"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "a", "victim"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, root
}

// snapshot lists everything under base except the target root, with enough
// detail to notice any write.
func snapshot(t testing.TB, base, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		data := ""
		if d.Type().IsRegular() {
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			data = fmt.Sprintf("%x", sha256.Sum256(raw))
		}
		fmt.Fprintf(&b, "%s %o %d:%d %d %s\n", p, st.Mode, st.Uid, st.Gid, st.Nlink, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func fileHash(t testing.TB, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(raw))
}

func TestApplyRefusesHostileLayers(t *testing.T) {
	requireRoot(t)
	uniq := fmt.Sprintf("berth-apply-test-%d", time.Now().UnixNano())
	passwd := fileHash(t, "/etc/passwd")
	tests := []struct {
		name    string
		ents    func(base string) []ent
		wantErr bool
	}{
		{"dotdot traversal", func(string) []ent {
			return []ent{{typ: tar.TypeReg, name: "../../escaped", body: "x"}}
		}, true},
		{"dotdot inside name", func(string) []ent {
			return []ent{{typ: tar.TypeReg, name: "ok/../../../escaped", body: "x"}}
		}, true},
		{"absolute path", func(string) []ent {
			return []ent{{typ: tar.TypeReg, name: "/etc/" + uniq, body: "x"}}
		}, true},
		{"file through symlink to slash", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "lnk", link: "/"},
				{typ: tar.TypeReg, name: "lnk" + base + "/escaped", body: "x"},
			}
		}, true},
		{"file through relative escaping symlink", func(string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "up", link: "../../.."},
				{typ: tar.TypeReg, name: "up/escaped", body: "x"},
			}
		}, true},
		{"dir through symlink", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "d", link: base},
				{typ: tar.TypeDir, name: "d/newdir/"},
			}
		}, true},
		{"overwrite through symlink", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "d", link: base},
				{typ: tar.TypeReg, name: "d/victim", body: "owned"},
			}
		}, true},
		{"whiteout through symlink", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "d", link: base},
				{typ: tar.TypeReg, name: "d/.wh.victim"},
			}
		}, true},
		{"opaque through symlink", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "d", link: base},
				{typ: tar.TypeReg, name: "d/.wh..wh..opq"},
			}
		}, true},
		{"whiteout escaping by dotdot", func(string) []ent {
			return []ent{{typ: tar.TypeReg, name: "../../.wh.victim"}}
		}, true},
		{"hardlink to /etc/passwd", func(string) []ent {
			return []ent{{typ: tar.TypeLink, name: "pw", link: "/etc/passwd"}}
		}, true},
		{"hardlink by dotdot", func(string) []ent {
			return []ent{{typ: tar.TypeLink, name: "pw", link: "../../victim"}}
		}, true},
		{"hardlink through symlink", func(base string) []ent {
			return []ent{
				{typ: tar.TypeSymlink, name: "d", link: base},
				{typ: tar.TypeLink, name: "pw", link: "d/victim"},
			}
		}, true},
		{"char device", func(string) []ent {
			return []ent{{typ: tar.TypeChar, name: "null", major: 1}}
		}, true},
		{"block device", func(string) []ent {
			return []ent{{typ: tar.TypeBlock, name: "sda", major: 8}}
		}, true},
		{"file replacing a hardlinked outside symlink", func(string) []ent {
			// The regular file must replace the link, never write through it.
			return []ent{
				{typ: tar.TypeSymlink, name: "s", link: "/etc/passwd"},
				{typ: tar.TypeLink, name: "h", link: "s"},
				{typ: tar.TypeReg, name: "h", body: "owned"},
				{typ: tar.TypeReg, name: "s", body: "owned"},
			}
		}, false},
		{"symlink target may point anywhere", func(string) []ent {
			return []ent{{typ: tar.TypeSymlink, name: "etc-passwd", link: "/etc/passwd"}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base, root := sandbox(t)
			before := snapshot(t, base, root)
			_, err := image.Apply(t.Context(), root, bytes.NewReader(buildTar(t, tt.ents(base)...)))
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("Apply error = %v, want InvalidArgument", err)
				}
			} else if err != nil {
				t.Errorf("Apply: %v", err)
			}
			if after := snapshot(t, base, root); after != before {
				t.Errorf("outside of the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Lstat("/etc/" + uniq); err == nil {
				os.Remove("/etc/" + uniq)
				t.Errorf("/etc/%s was created", uniq)
			}
			if got := fileHash(t, "/etc/passwd"); got != passwd {
				t.Errorf("/etc/passwd changed")
			}
		})
	}
}

func TestApplyLayer(t *testing.T) {
	requireRoot(t)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	layer := buildTar(t,
		ent{typ: tar.TypeDir, name: "./", mode: 0o755, mtime: mt},
		ent{typ: tar.TypeDir, name: "./usr/", mode: 0o750, uid: 7, gid: 8, mtime: mt},
		ent{typ: tar.TypeReg, name: "./usr/su", body: "binary", mode: 0o4755, uid: 0, gid: 0, mtime: mt},
		ent{typ: tar.TypeReg, name: "./usr/data", body: "hello", mode: 0o640, uid: 1000, gid: 1001, mtime: mt},
		ent{typ: tar.TypeLink, name: "./usr/data2", link: "./usr/data"},
		ent{typ: tar.TypeSymlink, name: "./bin", link: "usr", uid: 5, gid: 6},
		ent{typ: tar.TypeFifo, name: "./pipe", mode: 0o600},
		ent{typ: tar.TypeReg, name: "./deep/er/file", body: "auto parents"},
		ent{typ: tar.TypeReg, name: "./etc/.wh.gone"},
		ent{typ: tar.TypeDir, name: "./opaque/"},
		ent{typ: tar.TypeReg, name: "./opaque/.wh..wh..opq"},
		ent{typ: tar.TypeReg, name: "./.wh..wh.plnk"},
		ent{typ: tar.TypeReg, name: "./bin/through-relative-link", body: "ok"},
		ent{typ: tar.TypeReg, name: "./replaced", body: "old"},
		ent{typ: tar.TypeReg, name: "./replaced", body: "new"},
	)
	root := t.TempDir()
	n, err := image.Apply(t.Context(), root, bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if want := int64(len("binary") + len("hello") + len("auto parents") + len("ok") + len("old") + len("new")); n != want {
		t.Errorf("Apply size = %d, want %d", n, want)
	}
	stat := func(rel string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
			t.Fatalf("lstat %s: %v", rel, err)
		}
		return st
	}
	checks := []struct {
		rel      string
		mode     uint32
		uid, gid uint32
	}{
		{"usr", unix.S_IFDIR | 0o750, 7, 8},
		{"usr/su", unix.S_IFREG | 0o4755, 0, 0},
		{"usr/data", unix.S_IFREG | 0o640, 1000, 1001},
		{"bin", unix.S_IFLNK | 0o777, 5, 6},
		{"pipe", unix.S_IFIFO | 0o600, 0, 0},
		{"etc/gone", unix.S_IFCHR, 0, 0},
		{"deep/er", unix.S_IFDIR | 0o755, 0, 0},
	}
	for _, c := range checks {
		st := stat(c.rel)
		if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", c.rel, st.Mode, st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
	if st := stat("etc/gone"); st.Rdev != 0 {
		t.Errorf("whiteout rdev = %d, want 0", st.Rdev)
	}
	if a, b := stat("usr/data"), stat("usr/data2"); a.Ino != b.Ino {
		t.Errorf("hardlink: inodes %d and %d differ", a.Ino, b.Ino)
	}
	if got, _ := os.Readlink(filepath.Join(root, "bin")); got != "usr" {
		t.Errorf("symlink target = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "usr/through-relative-link")); string(got) != "ok" {
		t.Errorf("file through relative in-root symlink = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "replaced")); string(got) != "new" {
		t.Errorf("replaced file = %q", got)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(root, "opaque"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(root, ".wh..wh.plnk")); err == nil {
		t.Errorf("aufs metadata entry was created")
	}
	for _, rel := range []string{"usr", "usr/data"} {
		if st := stat(rel); st.Mtim.Sec != mt.Unix() {
			t.Errorf("%s mtime = %d, want %d", rel, st.Mtim.Sec, mt.Unix())
		}
	}
}

func TestApplyCorruptTar(t *testing.T) {
	requireRoot(t)
	good := buildTar(t, ent{typ: tar.TypeReg, name: "f", body: strings.Repeat("x", 2000)})
	_, err := image.Apply(t.Context(), t.TempDir(), bytes.NewReader(good[:1000]))
	if err == nil {
		t.Fatal("Apply of a truncated tar succeeded")
	}
}

// FuzzApply builds a layer from a small script ("<type> <name> [<link>]" a
// line; types f d l h p c w) and checks nothing outside the target changes.
func FuzzApply(f *testing.F) {
	requireRoot(f)
	for _, s := range []string{
		"f ../../x",
		"l lnk /\nf lnk/tmp/x",
		"l up ../..\nf up/victim",
		"h pw /etc/passwd",
		"h pw ../../victim",
		"d a/\nf a/.wh..wh..opq\nf a/.wh.b",
		"l s /etc/passwd\nh h s\nf h",
		"c dev",
		"l a .\nl b a/..\nf b/../../victim",
	} {
		f.Add(s)
	}
	passwd := fileHash(f, "/etc/passwd")
	f.Fuzz(func(t *testing.T, script string) {
		base, root := sandbox(t)
		var ents []ent
		for _, line := range strings.Split(script, "\n") {
			parts := strings.SplitN(line, " ", 3)
			if len(parts) < 2 || parts[0] == "" {
				continue
			}
			name := parts[1]
			// Absolute names through a symlink to "/" would, if Apply were
			// broken, write to the real host; pin them to the sandbox.
			name = strings.ReplaceAll(name, "/tmp", base)
			e := ent{name: name, body: "fuzz"}
			if len(parts) == 3 {
				e.link = strings.ReplaceAll(parts[2], "/tmp", base)
			}
			switch parts[0][0] {
			case 'f':
				e.typ = tar.TypeReg
			case 'd':
				e.typ = tar.TypeDir
			case 'l':
				e.typ = tar.TypeSymlink
			case 'h':
				e.typ = tar.TypeLink
			case 'p':
				e.typ = tar.TypeFifo
			case 'c':
				e.typ = tar.TypeChar
			case 'w':
				e.typ, e.name = tar.TypeReg, name+"/.wh.victim"
			default:
				continue
			}
			ents = append(ents, e)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range ents {
			hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o755, Format: tar.FormatPAX}
			if e.typ == tar.TypeReg {
				hdr.Size = int64(len(e.body))
			}
			if tw.WriteHeader(hdr) != nil {
				return // archive/tar refuses it; nothing to apply
			}
			if e.typ == tar.TypeReg {
				tw.Write([]byte(e.body))
			}
		}
		tw.Close()
		before := snapshot(t, base, root)
		image.Apply(t.Context(), root, bytes.NewReader(buf.Bytes())) // errors are fine; escapes are not
		if after := snapshot(t, base, root); after != before {
			t.Fatalf("script %q changed the outside:\nbefore:\n%s\nafter:\n%s", script, before, after)
		}
		if fileHash(t, "/etc/passwd") != passwd {
			t.Fatalf("script %q changed /etc/passwd", script)
		}
	})
}
