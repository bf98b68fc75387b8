package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/berth-dev/berth/engine/image"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	return randomImageOf(t, 512, layers)
}

// randomImageOf is randomImage with layers of about size bytes.
func randomImageOf(t *testing.T, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{
		Cmd:          []string{"sh", "-c", "echo hi"},
		Env:          []string{"PATH=/bin"},
		WorkingDir:   "/srv",
		User:         "1000",
		StopSignal:   "SIGINT",
		Labels:       map[string]string{"a": "b"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func dockerSave(t *testing.T, imgs map[string]v1.Image) []byte {
	t.Helper()
	m := map[name.Reference]v1.Image{}
	for ref, img := range imgs {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		m[tag] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(m, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarDir archives a directory the way `tar -C dir -c .` would.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = "./" + filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openStore(t *testing.T) (*image.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "image")
	s, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// checkImage compares a stored image with its source and reads every layer
// back to verify it hashes to its diff ID.
func checkImage(t *testing.T, s *image.Store, got image.Image, want v1.Image) {
	t.Helper()
	id, err := want.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id.String() {
		t.Errorf("ID = %s, want %s", got.ID, id)
	}
	cfg, err := want.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var diffs []string
	for _, d := range cfg.RootFS.DiffIDs {
		diffs = append(diffs, d.String())
	}
	if !slices.Equal(got.DiffIDs, diffs) {
		t.Errorf("DiffIDs = %v, want %v", got.DiffIDs, diffs)
	}
	if len(got.ChainIDs) != len(diffs) || got.ChainIDs[0] != diffs[0] {
		t.Errorf("ChainIDs = %v", got.ChainIDs)
	}
	var size int64
	for i, d := range got.DiffIDs {
		rc, err := s.Layer(t.Context(), got, i)
		if err != nil {
			t.Fatalf("Layer(%d): %v", i, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if "sha256:"+hex.EncodeToString(h.Sum(nil)) != d {
			t.Errorf("layer %d does not hash to its diff ID", i)
		}
		size += got.Layers[i].Size
	}
	if got.Size != size {
		t.Errorf("Size = %d, want the sum of its layer blobs, %d", got.Size, size)
	}
	wc := image.Config{
		Cmd: []string{"sh", "-c", "echo hi"}, Env: []string{"PATH=/bin"}, WorkingDir: "/srv",
		User: "1000", StopSignal: "SIGINT", Labels: map[string]string{"a": "b"}, ExposedPorts: []string{"53/udp", "80/tcp"},
	}
	if fmt.Sprint(got.Config) != fmt.Sprint(wc) {
		t.Errorf("Config = %+v, want %+v", got.Config, wc)
	}
}

func TestImportDockerSave(t *testing.T) {
	t.Parallel()
	a, b := randomImage(t, 2), randomImage(t, 3)
	archive := dockerSave(t, map[string]v1.Image{"example.com/a:1": a, "example.com/b:2": b})
	tests := []struct {
		name, ref string
		data      []byte
		want      v1.Image
	}{
		{"tagged match", "example.com/b:2", archive, b},
		{"tagged match gzip", "example.com/a:1", gz(t, archive), a},
		{"single image stored under another name", "mine:v1", dockerSave(t, map[string]v1.Image{"example.com/a:1": a}), a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t)
			got, err := s.Import(t.Context(), bytes.NewReader(tt.data), tt.ref)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			want, _ := image.Normalize(tt.ref)
			if got.Ref != want {
				t.Errorf("Ref = %q, want %q", got.Ref, want)
			}
			checkImage(t, s, got, tt.want)
		})
	}
}

func TestImportOCILayout(t *testing.T) {
	t.Parallel()
	a, b := randomImage(t, 1), randomImage(t, 2)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(a, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(b, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.com/b:2"})); err != nil {
		t.Fatal(err)
	}
	archive := tarDir(t, dir)

	// A multi-platform image: a nested index whose linux/GOARCH entry wins.
	other, c := randomImage(t, 1), randomImage(t, 1)
	multi := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: c, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	mdir := t.TempDir()
	mp, err := layout.Write(mdir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.AppendIndex(multi); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, ref string
		data      []byte
		want      v1.Image
	}{
		{"full ref annotation", "example.com/b:2", archive, b},
		{"tag annotation", "whatever:v1", gz(t, archive), a},
		{"no match takes first", "nomatch:x", archive, a},
		{"multi-platform index", "multi:1", tarDir(t, mdir), c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t)
			got, err := s.Import(t.Context(), bytes.NewReader(tt.data), tt.ref)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			checkImage(t, s, got, tt.want)
			// An OCI layout's blobs are kept as they are: same digests.
			if d, _ := tt.want.Digest(); got.Digest != d.String() {
				t.Errorf("manifest digest %s, want the archive's %s", got.Digest, d)
			}
		})
	}
}

func TestImportRootfs(t *testing.T) {
	t.Parallel()
	layer := buildTar(t,
		ent{typ: tar.TypeDir, name: "./"},
		ent{typ: tar.TypeDir, name: "./bin/"},
		ent{typ: tar.TypeReg, name: "./bin/sh", body: "#!fake", mode: 0o755},
	)
	for _, tt := range []struct {
		name string
		data []byte
	}{{"plain", layer}, {"gzip", gz(t, layer)}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t)
			got, err := s.Import(t.Context(), bytes.NewReader(tt.data), "rootfs")
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			sum := sha256.Sum256(layer)
			diff := "sha256:" + hex.EncodeToString(sum[:])
			if got.Ref != "docker.io/library/rootfs:latest" || !slices.Equal(got.DiffIDs, []string{diff}) || got.Size != int64(len(layer)) {
				t.Errorf("got %+v, want one layer %s of %d bytes", got, diff, len(layer))
			}
			if got.Config.Cmd != nil || got.Config.Entrypoint != nil || got.Created.IsZero() {
				t.Errorf("config = %+v, created %v; want empty config and a creation time", got.Config, got.Created)
			}
			rc, err := s.Layer(t.Context(), got, 0)
			if err != nil {
				t.Fatal(err)
			}
			back, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(back, layer) {
				t.Errorf("layer content differs from the imported tarball")
			}
		})
	}
}

func TestImportRejects(t *testing.T) {
	t.Parallel()
	s, root := openStore(t)
	good := buildTar(t, ent{typ: tar.TypeReg, name: "f", body: "x"})
	tests := []struct {
		name, ref string
		data      []byte
	}{
		{"bad ref", "Bad//Ref", good},
		{"digest ref", "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", good},
		{"empty input", "x", nil},
		{"not a tar", "x", bytes.Repeat([]byte("garbage!"), 200)},
		{"broken gzip", "x", gz(t, good)[:20]},
		{"docker save with a missing layer", "x", brokenDockerSave(t)},
	}
	for _, tt := range tests {
		_, err := s.Import(t.Context(), bytes.NewReader(tt.data), tt.ref)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Import error = %v, want InvalidArgument", tt.name, err)
		}
	}
	if imgs, _ := s.List(t.Context()); len(imgs) != 0 {
		t.Errorf("failed imports left refs: %v", imgs)
	}
	if n := countFiles(t, filepath.Join(root, "blobs", "sha256")); n != 0 {
		t.Errorf("failed imports left %d blobs", n)
	}
}

// brokenDockerSave drops a layer file from a docker save archive.
func brokenDockerSave(t *testing.T) []byte {
	archive := dockerSave(t, map[string]v1.Image{"a:1": randomImage(t, 1)})
	tr := tar.NewReader(bytes.NewReader(archive))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(hdr.Name) == ".tar" || filepath.Ext(hdr.Name) == ".gz" {
			continue
		}
		tw.WriteHeader(hdr)
		io.Copy(tw, tr)
	}
	tw.Close()
	return buf.Bytes()
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestGetListRemove(t *testing.T) {
	t.Parallel()
	s, root := openStore(t)
	ctx := t.Context()
	a, b := randomImage(t, 2), randomImage(t, 1)
	imgA, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": a})), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": a})), "example.com/alias:2"); err != nil {
		t.Fatal(err)
	}
	imgB, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"b:1": b})), "app:dev")
	if err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", imgA.ID} {
		got, err := s.Get(ctx, q)
		if err != nil || got.ID != imgA.ID {
			t.Errorf("Get(%q) = %s, %v; want %s", q, got.ID, err, imgA.ID)
		}
	}
	if got, err := s.Get(ctx, imgB.ID[len("sha256:"):len("sha256:")+12]); err != nil || got.ID != imgB.ID || got.Ref != "docker.io/library/app:dev" {
		t.Errorf("Get(short id) = %+v, %v", got, err)
	}
	for _, q := range []string{"nothere", "sha256:ffffffffffff", "app:other"} {
		if _, err := s.Get(ctx, q); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want NotFound", q, err)
		}
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, i := range list {
		refs = append(refs, i.Ref)
	}
	if want := []string{"docker.io/library/app:dev", "docker.io/library/busybox:latest", "example.com/alias:2"}; !slices.Equal(refs, want) {
		t.Errorf("List = %v, want %v", refs, want)
	}

	// Blobs shared with another ref survive the removal.
	if _, err := s.Remove(ctx, "busybox", image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	alias, err := s.Get(ctx, "example.com/alias:2")
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, alias, a)
	if _, err := s.Remove(ctx, "busybox", image.RemoveOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Remove error = %v, want NotFound", err)
	}

	// Re-import moves a ref; the old image stays, untagged, until a prune.
	if _, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"b:1": b})), "example.com/alias:2"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx); len(list) != 3 || list[2].Ref != "" || list[2].ID != imgA.ID {
		t.Errorf("List after moving the last tag = %+v, want the old image untagged last", list)
	}
	// By ID: every tag of the image, which needs -f when there are several.
	if _, err := s.Remove(ctx, imgB.ID, image.RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove(id of an image with 2 tags) = %v, want Conflict", err)
	}
	rm, err := s.Remove(ctx, imgB.ID, image.RemoveOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rm.Untagged, []string{"app:dev", "example.com/alias:2"}) || !slices.Equal(rm.Deleted, []string{imgB.ID}) {
		t.Errorf("Remove = %+v", rm)
	}
	pr, err := s.Prune(ctx, false, image.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pr.Deleted, []string{imgA.ID}) || pr.Blobs == 0 {
		t.Errorf("Prune = %+v, want the untagged image and its blobs", pr)
	}
	if _, err := s.Layer(ctx, alias, 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("old layer after prune: %v, want NotFound", err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("List after removing all = %v", list)
	}
	if n := countFiles(t, filepath.Join(root, "blobs", "sha256")); n != 0 {
		t.Errorf("%d blobs left after removing every image", n)
	}
}

func TestStoreIsOCILayout(t *testing.T) {
	t.Parallel()
	s, root := openStore(t)
	img := randomImage(t, 2)
	if _, err := s.Import(t.Context(), bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": img})), "a:1"); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(root)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "docker.io/library/a:1" {
		t.Fatalf("index.json = %+v", im)
	}
	got, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateLayers(got); err != nil {
		t.Errorf("stored image does not read back through go-containerregistry: %v", err)
	}
}

func validateLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	_, err = img.ConfigFile()
	return err
}

func TestTwoOpensShareRefs(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "image")
	s1, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	img, err := s1.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": randomImage(t, 1)})), "one")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(ctx, "one"); err != nil || got.ID != img.ID {
		t.Fatalf("second store Get = %+v, %v", got, err)
	}
	if _, err := s2.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"b:1": randomImage(t, 1)})), "two"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s1.List(ctx); len(list) != 2 {
		t.Errorf("first store List = %v, want both refs", list)
	}
	if _, err := s1.Remove(ctx, "two", image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, "two"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second store still sees a removed ref: %v", err)
	}
}

func TestLayerIndexOutOfRange(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	for _, i := range []int{-1, 1} {
		if _, err := s.Layer(t.Context(), image.Image{Layers: []image.Layer{{Digest: "sha256:" + fmt.Sprintf("%064x", 0)}}}, i); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Layer(%d) error = %v, want InvalidArgument", i, err)
		}
	}
}

func TestImportChanges(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	layer := buildTar(t, ent{typ: tar.TypeReg, name: "f", body: "x"})
	img, err := s.Import(t.Context(), bytes.NewReader(layer), "changed:1",
		`CMD ["redis-server", "--protected-mode", "no"]`, "ENTRYPOINT /entry.sh", "ENV A=1 B=\"two words\"", "ENV C 3",
		"EXPOSE 6379 53/udp", "VOLUME /data", `LABEL org.example="x y"`, "USER redis", "WORKDIR /data", "STOPSIGNAL SIGINT")
	if err != nil {
		t.Fatal(err)
	}
	want := image.Config{
		Cmd: []string{"redis-server", "--protected-mode", "no"}, Entrypoint: []string{"/bin/sh", "-c", "/entry.sh"},
		Env: []string{"A=1", "B=two words", "C=3"}, ExposedPorts: []string{"53/udp", "6379/tcp"}, Volumes: []string{"/data"},
		Labels: map[string]string{"org.example": "x y"}, User: "redis", WorkingDir: "/data", StopSignal: "SIGINT",
	}
	if fmt.Sprint(img.Config) != fmt.Sprint(want) {
		t.Errorf("config %+v\nwant %+v", img.Config, want)
	}
	for _, bad := range []string{"RUN x", "CMD [broken", "ENV", "LABEL =x"} {
		if _, err := s.Import(t.Context(), bytes.NewReader(layer), "bad:1", bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("--change %q: %v, want InvalidArgument", bad, err)
		}
	}
}
