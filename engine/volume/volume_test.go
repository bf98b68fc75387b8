package volume

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateGetListRemove(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)

	labels := map[string]string{"com.docker.compose.project": "demo"}
	v, err := s.Create(ctx, "demo_data", labels)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "demo_data" || v.Labels["com.docker.compose.project"] != "demo" || v.Created.IsZero() {
		t.Fatalf("unexpected volume %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint %s: %v", v.Mountpoint, err)
	}
	if filepath.Base(v.Mountpoint) != "_data" {
		t.Fatalf("mountpoint %s does not end in _data", v.Mountpoint)
	}
	// The caller's map must not alias the stored labels.
	labels["x"] = "y"

	again, err := s.Create(ctx, "demo_data", nil)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second create: got %v, want AlreadyExists", err)
	}
	if again.Name != v.Name || !again.Created.Equal(v.Created) || again.Labels["x"] != "" {
		t.Fatalf("second create returned %+v, want existing %+v", again, v)
	}

	got, err := s.Get(ctx, "demo_data")
	if err != nil {
		t.Fatal(err)
	}
	if got.Mountpoint != v.Mountpoint || !got.Created.Equal(v.Created) {
		t.Fatalf("get: %+v, want %+v", got, v)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}

	for _, n := range []string{"b", "a", "C.x"} {
		if _, err := s.Create(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, v := range list {
		listed = append(listed, v.Name)
	}
	want := []string{"C.x", "a", "b", "demo_data"}
	if len(listed) != len(want) {
		t.Fatalf("list %v, want %v", listed, want)
	}
	for i := range want {
		if listed[i] != want[i] {
			t.Fatalf("list %v, want %v", listed, want)
		}
	}

	if err := os.WriteFile(filepath.Join(v.Mountpoint, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "demo_data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume directory still there: %v", err)
	}
	if err := s.Remove(ctx, "demo_data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := s.Get(ctx, "demo_data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get removed: %v", err)
	}
	// Nothing but the remaining volumes and the lock directory is left.
	entries, _ := os.ReadDir(s.root)
	for _, e := range entries {
		switch e.Name() {
		case "a", "b", "C.x", lockDir:
		default:
			t.Errorf("leftover entry %q in root", e.Name())
		}
	}
}

func TestNameValidation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, name := range []string{"", "../x", "a/b", ".hidden", "..", "-x", ".locks", "x y"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if _, err := s.Create(ctx, name, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("create %q: got %v, want InvalidArgument", name, err)
			}
			if _, err := s.Get(ctx, name); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("get %q: got %v, want InvalidArgument", name, err)
			}
			if err := s.Remove(ctx, name); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("remove %q: got %v, want InvalidArgument", name, err)
			}
			if err := s.CopyUpOnce(ctx, name, t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("copy-up %q: got %v, want InvalidArgument", name, err)
			}
			entries, err := os.ReadDir(s.root)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Fatalf("invalid name created %v", entries)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.root), "x")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something escaped the root: %v", err)
			}
		})
	}
}

// imageTree builds a small directory tree with the kinds of entries an image
// holds and returns its path.
func imageTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "rootfs", "var", "lib", "app")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "config"), []byte("hello"), 0o640))
	must(os.WriteFile(filepath.Join(src, "sub", "run"), []byte("#!/bin/sh\n"), 0o755))
	must(unix.Chmod(filepath.Join(src, "sub", "run"), 0o4755))
	must(os.Symlink("../config", filepath.Join(src, "sub", "link")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs")))
	must(os.Link(filepath.Join(src, "config"), filepath.Join(src, "hard")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(unix.Chmod(filepath.Join(src, "fifo"), 0o620))
	must(os.Chmod(src, 0o750))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(src, "config"), 999, 998))
		must(os.Lchown(filepath.Join(src, "hard"), 999, 998))
		must(os.Lchown(filepath.Join(src, "sub", "link"), 123, 456))
		must(os.Chown(src, 1000, 1000))
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "sub"), old, old))
	return src
}

func TestCopyUpOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("copy-up keeps file owners, which needs root")
	}
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	v, err := s.Create(ctx, "data", nil)
	if err != nil {
		t.Fatal(err)
	}
	src := imageTree(t)

	// A missing source copies nothing and leaves the volume open to a later
	// copy-up.
	if err := s.CopyUpOnce(ctx, "data", filepath.Join(src, "nope")); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUpOnce(ctx, "data", src); err != nil {
		t.Fatal(err)
	}
	mp := v.Mountpoint
	if b, err := os.ReadFile(filepath.Join(mp, "config")); err != nil || string(b) != "hello" {
		t.Fatalf("config: %q %v", b, err)
	}
	checks := []struct {
		path       string
		mode       os.FileMode
		uid, gid   uint32
		linkTarget string
	}{
		{path: ".", mode: os.ModeDir | 0o750, uid: 1000, gid: 1000},
		{path: "config", mode: 0o640, uid: 999, gid: 998},
		{path: "sub/run", mode: 0o755 | os.ModeSetuid},
		{path: "sub/link", mode: os.ModeSymlink | 0o777, uid: 123, gid: 456, linkTarget: "../config"},
		{path: "abs", mode: os.ModeSymlink | 0o777, linkTarget: "/etc/passwd"},
		{path: "fifo", mode: os.ModeNamedPipe | 0o620},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(mp, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if c.linkTarget != "" {
			if got, _ := os.Readlink(filepath.Join(mp, c.path)); got != c.linkTarget {
				t.Errorf("%s: link %q, want %q", c.path, got, c.linkTarget)
			}
		}
	}
	a, _ := os.Stat(filepath.Join(mp, "config"))
	b, _ := os.Stat(filepath.Join(mp, "hard"))
	if !os.SameFile(a, b) {
		t.Error("hard link not preserved")
	}
	if fi, _ := os.Stat(filepath.Join(mp, "sub")); fi.ModTime().Year() != 2020 {
		t.Errorf("sub mtime %v not preserved", fi.ModTime())
	}

	// A second call must not copy again, even into an emptied volume.
	if err := os.RemoveAll(filepath.Join(mp, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mp, "config")); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUpOnce(ctx, "data", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(mp, "config")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copy-up ran twice: %v", err)
	}

	if err := s.CopyUpOnce(ctx, "missing", src); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("copy-up into missing volume: %v", err)
	}
}

func TestCopyUpSkipsNonEmptyVolume(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	v, err := s.Create(ctx, "used", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "mine"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "theirs"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyUpOnce(ctx, "used", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(v.Mountpoint, "theirs")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copied into a volume that already had data: %v", err)
	}
	// Once seen non-empty, the volume stays initialised even if emptied.
	os.Remove(filepath.Join(v.Mountpoint, "mine"))
	if err := s.CopyUpOnce(ctx, "used", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(v.Mountpoint, "theirs")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copied after the volume was initialised: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	src := t.TempDir()
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		exists  int
	)
	for range n {
		wg.Go(func() {
			// Separate stores act like separate berth processes.
			s2, err := Open(s.root)
			if err != nil {
				t.Error(err)
				return
			}
			_, err = s2.Create(ctx, "shared", nil)
			mu.Lock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, errdefs.ErrAlreadyExists):
				exists++
			default:
				t.Error(err)
			}
			mu.Unlock()
			if err := s2.CopyUpOnce(ctx, "shared", src); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if created != 1 || exists != n-1 {
		t.Fatalf("created %d, already-exists %d; want 1 and %d", created, exists, n-1)
	}
	v, err := s.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(v.Mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 50 {
		t.Fatalf("volume holds %d entries, want 50", len(entries))
	}

	var rwg sync.WaitGroup
	var removed, notFound int
	for range n {
		rwg.Go(func() {
			err := s.Remove(ctx, "shared")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				removed++
			case errors.Is(err, errdefs.ErrNotFound):
				notFound++
			default:
				t.Error(err)
			}
		})
	}
	rwg.Wait()
	if removed != 1 || notFound != n-1 {
		t.Fatalf("removed %d, not-found %d; want 1 and %d", removed, notFound, n-1)
	}
}

func TestRemoveUnlessKeepsAVolumeInUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	if _, err := s.Create(ctx, "demo_data", nil); err != nil {
		t.Fatal(err)
	}
	inUse := errors.New("in use by x")
	if err := s.RemoveUnless(ctx, "demo_data", func() error { return inUse }); !errors.Is(err, inUse) {
		t.Fatalf("err %v, want the check's", err)
	}
	if _, err := s.Get(ctx, "demo_data"); err != nil {
		t.Fatalf("volume gone after a refused removal: %v", err)
	}
	if err := s.RemoveUnless(ctx, "demo_data", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "demo_data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("volume left: %v", err)
	}
}
