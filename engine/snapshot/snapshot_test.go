package snapshot_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/containerd/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlayfs and creates overlay whiteouts")
	}
}

// chain makes a distinct, valid chain ID per test and label.
func chain(t *testing.T, label string) string {
	sum := sha256.Sum256([]byte(t.Name() + "/" + label))
	return fmt.Sprintf("sha256:%x", sum)
}

func openStore(t *testing.T) (*snapshot.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "snapshot")
	s, err := snapshot.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func writeFiles(files map[string]string) func(string) error {
	return func(dir string) error {
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func layerTar(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestOverlayRoot(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s, root := openStore(t)
	ctx := t.Context()
	lower, upper := chain(t, "lower"), chain(t, "upper")
	if err := s.EnsureLayer(ctx, lower, writeFiles(map[string]string{
		"shared": "lower", "only-lower": "x", "gone": "bye", "opaque/hidden": "h",
	})); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureLayer(ctx, upper, func(dir string) error {
		if err := writeFiles(map[string]string{"shared": "upper", "opaque/new": "n"})(dir); err != nil {
			return err
		}
		_, err := image.Apply(ctx, dir, bytes.NewReader(layerTar(t, ".wh.gone", "opaque/.wh..wh..opq")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(lower) || !s.HasLayer(upper) {
		t.Fatal("HasLayer is false after EnsureLayer")
	}

	key := "overlay-root"
	mounts, err := s.Prepare(ctx, key, []string{lower, upper})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		t.Fatalf("mounts = %+v", mounts)
	}
	wantLower := "lowerdir=" + filepath.Join(root, "layers", strings.TrimPrefix(upper, "sha256:")) + ":" + filepath.Join(root, "layers", strings.TrimPrefix(lower, "sha256:"))
	if mounts[0].Options[0] != wantLower {
		t.Errorf("options[0] = %q, want top layer first: %q", mounts[0].Options[0], wantLower)
	}
	if again, err := s.Prepare(ctx, key, []string{lower, upper}); err != nil || fmt.Sprint(again) != fmt.Sprint(mounts) {
		t.Errorf("second Prepare = %v, %v", again, err)
	}

	target := filepath.Join(t.TempDir(), "rootfs")
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.Unmount(target) })

	for name, want := range map[string]string{
		"shared":        "upper",
		"only-lower":    "x",
		"opaque/new":    "n",
		"gone":          "<open " + filepath.Join(target, "gone") + ": no such file or directory>",
		"opaque/hidden": "<open " + filepath.Join(target, "opaque/hidden") + ": no such file or directory>",
	} {
		if got := read(t, filepath.Join(target, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(root, "containers", key, "upper", "written")); got != "w" {
		t.Errorf("write did not land in the upper dir: %q", got)
	}
	for _, c := range []string{lower, upper} {
		if _, err := os.Stat(filepath.Join(root, "layers", strings.TrimPrefix(c, "sha256:"), "written")); err == nil {
			t.Errorf("write landed in layer %s", c)
		}
	}

	if err := snapshot.Unmount(target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "shared")); err == nil {
		t.Error("target still shows the overlay after Unmount")
	}
	if err := snapshot.Unmount(target); err != nil {
		t.Errorf("Unmount of an unmounted target: %v", err)
	}
	if err := s.Remove(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "containers", key)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container dir left after Remove: %v", err)
	}
	if err := s.Remove(ctx, key); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	for _, c := range []string{upper, lower} {
		if err := s.RemoveLayer(ctx, c); err != nil {
			t.Fatal(err)
		}
		if s.HasLayer(c) {
			t.Errorf("HasLayer(%s) after RemoveLayer", c)
		}
		if err := s.RemoveLayer(ctx, c); err != nil {
			t.Errorf("second RemoveLayer: %v", err)
		}
	}
	for _, d := range []string{"layers", "containers", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s not empty after removing everything: %v", d, ents)
		}
	}
}

func TestManyLayersExceedPage(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	s, _ := openStore(t)
	ctx := t.Context()
	var chains []string
	for i := range 80 { // 80 * ~100 bytes of lowerdir is about twice a page
		c := chain(t, fmt.Sprint(i))
		if err := s.EnsureLayer(ctx, c, writeFiles(map[string]string{"f": fmt.Sprint(i), fmt.Sprintf("l%d", i): "x"})); err != nil {
			t.Fatal(err)
		}
		chains = append(chains, c)
	}
	mounts, err := s.Prepare(ctx, "many-layers", chains)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(mounts[0].Options, ",")); n <= os.Getpagesize() {
		t.Fatalf("options are only %d bytes; the test needs more than a page", n)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.Unmount(target) })
	if got := read(t, filepath.Join(target, "f")); got != "79" {
		t.Errorf("f = %q, want the top layer's 79", got)
	}
	if got := read(t, filepath.Join(target, "l0")); got != "x" {
		t.Errorf("bottom layer file l0 = %q", got)
	}
	if err := snapshot.Unmount(target); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := t.Context()
	known := chain(t, "known")
	if err := s.EnsureLayer(ctx, known, writeFiles(nil)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    string
		chains []string
		want   error
	}{
		{"unknown layer", "k", []string{known, chain(t, "unknown")}, errdefs.ErrNotFound},
		{"bad chain id", "k", []string{"sha256:xyz"}, errdefs.ErrInvalidArgument},
		{"bad key", "../k", []string{known}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		if _, err := s.Prepare(ctx, tt.key, tt.chains); !errors.Is(err, tt.want) {
			t.Errorf("%s: Prepare error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := s.EnsureLayer(ctx, "../../etc", writeFiles(nil)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("EnsureLayer with a bad chain id: %v", err)
	}
	if err := s.Remove(ctx, "../x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Remove with a bad key: %v", err)
	}
}

func TestEnsureLayerOnce(t *testing.T) {
	t.Parallel()
	s, root := openStore(t)
	c := chain(t, "c")
	var calls atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.EnsureLayer(t.Context(), c, func(dir string) error {
				calls.Add(1)
				time.Sleep(100 * time.Millisecond) // keep the others waiting on the lock
				return os.WriteFile(filepath.Join(dir, "f"), []byte("once"), 0o644)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("unpack ran %d times, want 1", n)
	}
	if got := read(t, filepath.Join(root, "layers", strings.TrimPrefix(c, "sha256:"), "f")); got != "once" {
		t.Errorf("layer content = %q", got)
	}
}

func TestEnsureLayerFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	s, root := openStore(t)
	c := chain(t, "c")
	boom := errors.New("boom")
	err := s.EnsureLayer(t.Context(), c, func(dir string) error {
		os.WriteFile(filepath.Join(dir, "partial"), []byte("x"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("EnsureLayer error = %v, want the unpack error", err)
	}
	if s.HasLayer(c) {
		t.Error("a failed unpack left a layer")
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Errorf("a failed unpack left temporary files: %v", ents)
	}
	// A later attempt unpacks again and clears what a crashed one left.
	h := strings.TrimPrefix(c, "sha256:")
	if err := os.Mkdir(filepath.Join(root, "tmp", h+"-crashed"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureLayer(t.Context(), c, writeFiles(map[string]string{"f": "ok"})); err != nil || !s.HasLayer(c) {
		t.Errorf("retry: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Errorf("stale unpack directory not cleared: %v", ents)
	}
}

func TestMountAllBadOptions(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	target := filepath.Join(t.TempDir(), "t")
	err := snapshot.MountAll([]snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent-berth-test"}}}, target)
	if err == nil {
		snapshot.Unmount(target)
		t.Fatal("MountAll with a missing lower dir succeeded")
	}
}
