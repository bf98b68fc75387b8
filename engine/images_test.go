package engine

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

func testEngine(t *testing.T) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: layers keep their owners")
	}
	dir := t.TempDir()
	e, err := Open(t.Context(), Options{Root: filepath.Join(dir, "root"), Run: filepath.Join(dir, "run"), Exe: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rootfs(t *testing.T, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
	tw.Write([]byte(body))
	tw.Close()
	return b.Bytes()
}

// TestPruneRacesCreateAndImport: image prune -a, racing a container create
// (which unpacks) and an import, never leaves a container whose image or
// layers are gone, nor an image whose blobs are gone.
func TestPruneRacesCreateAndImport(t *testing.T) {
	e := testEngine(t)
	ctx := t.Context()
	for i := range 25 {
		if _, err := e.Images.Import(ctx, bytes.NewReader(rootfs(t, fmt.Sprint("v", i))), "app:1", `CMD ["/bin/app"]`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var createErr error
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, createErr = e.CreateContainer(ctx, fmt.Sprint("c", i), container.Config{Image: "app:1"})
		}()
		go func() {
			defer wg.Done()
			if _, err := e.Images.Import(ctx, bytes.NewReader(rootfs(t, fmt.Sprint("other", i))), fmt.Sprint("other:", i)); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, _, err := e.PruneImages(ctx, true); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if createErr != nil && !errors.Is(createErr, errdefs.ErrNotFound) {
			t.Fatalf("create: %v", createErr) // NotFound: prune went first
		}
		// Every container's image is there, unpacked.
		cs, _ := e.Containers.List(ctx)
		for _, c := range cs {
			img, err := e.Images.Get(ctx, c.Config.ImageID)
			if err != nil {
				t.Fatalf("container %s: image %s gone: %v", c.Name, c.Config.ImageID, err)
			}
			for _, ch := range img.ChainIDs {
				if !e.Snapshots.HasLayer(ch) {
					t.Fatalf("container %s: layer %s gone", c.Name, ch)
				}
			}
		}
		// Every image reads back whole.
		imgs, _ := e.Images.List(ctx)
		for _, img := range imgs {
			for l := range img.Layers {
				if err := e.Images.Unpack(ctx, img, l, t.TempDir()); err != nil {
					t.Fatalf("image %s: %v", img.Ref, err)
				}
			}
		}
	}
	// With the containers gone, prune -a leaves nothing at all.
	cs, _ := e.Containers.List(ctx)
	for _, c := range cs {
		if err := e.Containers.Remove(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.PruneImages(ctx, true); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := e.Images.List(ctx); len(imgs) != 0 {
		t.Errorf("images left: %v", imgs)
	}
	if ls, _ := e.Snapshots.Layers(); len(ls) != 0 {
		t.Errorf("layers left: %v", ls)
	}
}

// TestImageRmRefusesUsedImages: rm of an image a container uses is a
// Conflict naming it; -f untags it but keeps it until the container goes.
func TestImageRmRefusesUsedImages(t *testing.T) {
	e := testEngine(t)
	ctx := t.Context()
	img, err := e.Images.Import(ctx, bytes.NewReader(rootfs(t, "x")), "app:1", `CMD ["/bin/app"]`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.CreateContainer(ctx, "user", container.Config{Image: "app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RemoveImage(ctx, "app:1", false); !errors.Is(err, errdefs.ErrConflict) || !bytes.Contains([]byte(err.Error()), []byte("user")) {
		t.Fatalf("rm of a used image: %v, want Conflict naming the container", err)
	}
	out, err := e.RemoveImage(ctx, "app:1", true)
	if err != nil || len(out.Untagged) != 1 || len(out.Deleted) != 0 {
		t.Fatalf("rm -f: %+v, %v", out, err)
	}
	if _, _, err := e.PruneImages(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Images.Get(ctx, img.ID); err != nil {
		t.Fatalf("image of a container removed: %v", err)
	}
	for _, ch := range img.ChainIDs {
		if !e.Snapshots.HasLayer(ch) {
			t.Fatalf("layer %s of a container removed", ch)
		}
	}
	if err := e.Containers.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.PruneImages(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Images.Get(ctx, img.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("untagged image with no container left after prune: %v", err)
	}
	if ls, _ := e.Snapshots.Layers(); len(ls) != 0 {
		t.Errorf("layers left: %v", ls)
	}
}

// TestImageVolumesBecomeAnonymousVolumes: an image's VOLUME gets a new
// anonymous volume, labelled as Docker labels them.
func TestImageVolumesBecomeAnonymousVolumes(t *testing.T) {
	e := testEngine(t)
	ctx := t.Context()
	if _, err := e.Images.Import(ctx, bytes.NewReader(rootfs(t, "x")), "vol:1", `CMD ["/bin/app"]`, "VOLUME /data"); err != nil {
		t.Fatal(err)
	}
	c, err := e.CreateContainer(ctx, "v", container.Config{Image: "vol:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Config.Mounts) != 1 || !c.Config.Mounts[0].Anonymous || c.Config.Mounts[0].Target != "/data" {
		t.Fatalf("mounts %+v", c.Config.Mounts)
	}
	v, err := e.Volumes.Get(ctx, c.Config.Mounts[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Labels[LabelAnonymousVolume]; !ok {
		t.Errorf("volume labels %v", v.Labels)
	}
	e.Volumes.Remove(ctx, v.Name)
}
