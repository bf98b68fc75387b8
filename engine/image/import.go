package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type archiveKind int

const (
	kindRootfs archiveKind = iota
	kindDockerSave
	kindOCILayout
)

// Import stores the image read from r under ref, replacing any image the
// ref named before. r may be gzip-compressed and holds a docker save
// archive, an OCI image layout archive, or a plain root filesystem tarball
// (which becomes a one-layer image with an empty config, like docker
// import). Archives with several images give the one tagged ref, else the
// first.
func (s *Store) Import(ctx context.Context, r io.Reader, ref string) (Image, error) {
	n, err := Normalize(ref)
	if err != nil {
		return Image{}, err
	}
	if strings.Contains(n, "@") {
		return Image{}, fmt.Errorf("import %q: a digest cannot name an imported image: %w", ref, errdefs.ErrInvalidArgument)
	}
	// Held for the whole import so a concurrent Remove's garbage collection
	// cannot delete blobs written here before the ref points at them.
	l, err := s.lock(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("import %q: %w", ref, err)
	}
	defer l.Unlock()

	img, err := s.importLocked(ctx, r, n)
	if err != nil {
		return Image{}, fmt.Errorf("import %q: %w", ref, err)
	}
	return img, nil
}

func (s *Store) importLocked(ctx context.Context, r io.Reader, ref string) (Image, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Image{}, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		defer zr.Close()
		src = corruptReader{zr}
	}
	tmp, digest, size, err := s.spool(ctx, src)
	if err != nil {
		return Image{}, fmt.Errorf("read archive: %w", err)
	}
	defer os.Remove(tmp) // a no-op once the rootfs case renamed it into blobs

	kind, err := sniff(tmp)
	if err != nil {
		return Image{}, err
	}
	var rec record
	switch kind {
	case kindDockerSave:
		img, err := dockerSaveImage(tmp, ref)
		if err != nil {
			return Image{}, err
		}
		rec, err = s.storeImage(ctx, img)
		if err != nil {
			return Image{}, err
		}
	case kindOCILayout:
		rec, err = s.importOCI(ctx, tmp, ref)
		if err != nil {
			return Image{}, err
		}
	default:
		if err := s.commitBlob(tmp, digest); err != nil {
			return Image{}, fmt.Errorf("store layer: %w", err)
		}
		rec, err = s.storeRootfs(ctx, digest, size)
		if err != nil {
			return Image{}, err
		}
	}
	rec.Ref = ref
	refs, err := s.readRefs()
	if err != nil {
		return Image{}, err
	}
	refs[ref] = rec
	if err := s.writeRefs(refs); err != nil {
		return Image{}, err
	}
	if err := s.gc(refs); err != nil {
		return Image{}, err
	}
	return rec.Image, nil
}

// corruptReader classes decompression failures as bad input rather than
// I/O trouble.
type corruptReader struct{ r io.Reader }

func (c corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return n, err
}

// sniff tells the archive kind from its top-level entries.
func sniff(p string) (archiveKind, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("not a tar archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		entries++
		if hdr.Typeflag == tar.TypeReg {
			seen[path.Clean(strings.TrimPrefix(hdr.Name, "/"))] = true
		}
	}
	switch {
	case entries == 0:
		return 0, fmt.Errorf("empty archive: %w", errdefs.ErrInvalidArgument)
	case seen["manifest.json"]:
		return kindDockerSave, nil
	case seen["oci-layout"] && seen["index.json"]:
		return kindOCILayout, nil
	}
	return kindRootfs, nil
}

// dockerSaveImage picks the image tagged ref in a docker save archive, or
// the first one.
func dockerSaveImage(p, ref string) (v1.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("docker archive manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("docker archive holds no image: %w", errdefs.ErrInvalidArgument)
	}
	chosen := m[0]
	for _, d := range m {
		if slices.ContainsFunc(d.RepoTags, func(t string) bool { n, err := Normalize(t); return err == nil && n == ref }) {
			chosen = d
			break
		}
	}
	var tag *name.Tag
	switch {
	case len(chosen.RepoTags) > 0:
		t, err := name.NewTag(chosen.RepoTags[0])
		if err != nil {
			return nil, fmt.Errorf("docker archive tag %q: %v: %w", chosen.RepoTags[0], err, errdefs.ErrInvalidArgument)
		}
		tag = &t
	case len(m) > 1:
		return nil, fmt.Errorf("docker archive with several untagged images: %w", errdefs.ErrNotImplemented)
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("docker archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

// importOCI unpacks the layout archive (untrusted, so through Apply) and
// picks the image annotated with ref, or the first.
func (s *Store) importOCI(ctx context.Context, p, ref string) (record, error) {
	dir, err := os.MkdirTemp(s.path(tmpName), "oci-")
	if err != nil {
		return record{}, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(p)
	if err != nil {
		return record{}, err
	}
	_, err = Apply(ctx, dir, f)
	f.Close()
	if err != nil {
		return record{}, fmt.Errorf("oci layout: %w", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return record{}, fmt.Errorf("oci layout: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	img, err := pickFromIndex(idx, ref, true)
	if err != nil {
		return record{}, err
	}
	return s.storeImage(ctx, img)
}

func pickFromIndex(idx v1.ImageIndex, ref string, top bool) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var candidates []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() || d.MediaType.IsIndex() {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("oci index holds no image: %w", errdefs.ErrInvalidArgument)
	}
	chosen := candidates[0]
	if top {
		if i := slices.IndexFunc(candidates, func(d v1.Descriptor) bool { return annotatedAs(d, ref) }); i >= 0 {
			chosen = candidates[i]
		}
	} else if i := slices.IndexFunc(candidates, func(d v1.Descriptor) bool {
		return d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH
	}); i >= 0 {
		// A nested index is a multi-platform image: take this machine's.
		chosen = candidates[i]
	}
	if chosen.MediaType.IsIndex() {
		child, err := idx.ImageIndex(chosen.Digest)
		if err != nil {
			return nil, fmt.Errorf("oci index %s: %v: %w", chosen.Digest, err, errdefs.ErrInvalidArgument)
		}
		return pickFromIndex(child, ref, false)
	}
	img, err := idx.Image(chosen.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci image %s: %v: %w", chosen.Digest, err, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

// annotatedAs matches the ref-name annotations OCI tools write: a full
// reference (docker, containerd) or just the tag (skopeo, the OCI spec).
func annotatedAs(d v1.Descriptor, ref string) bool {
	for _, k := range []string{refNameAnnotation, "io.containerd.image.name"} {
		v := d.Annotations[k]
		if v == "" {
			continue
		}
		if n, err := Normalize(v); err == nil && n == ref {
			return true
		}
		if strings.HasSuffix(ref, ":"+v) {
			return true
		}
	}
	return false
}

// storeImage copies img's layers (uncompressed, verified against the diff
// IDs), config and a fresh manifest into blobs.
func (s *Store) storeImage(ctx context.Context, img v1.Image) (record, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return record{}, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return record{}, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var layers []v1.Descriptor
	for _, h := range cfg.RootFS.DiffIDs {
		l, err := img.LayerByDiffID(h)
		if err != nil {
			return record{}, fmt.Errorf("layer %s: %v: %w", h, err, errdefs.ErrInvalidArgument)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return record{}, fmt.Errorf("layer %s: %v: %w", h, err, errdefs.ErrInvalidArgument)
		}
		digest, n, err := s.writeBlob(ctx, rc, h.String())
		rc.Close()
		if err != nil {
			return record{}, fmt.Errorf("layer %s: %w", h, err)
		}
		layers = append(layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: n, Digest: mustHash(digest)})
	}
	return s.storeManifest(ctx, raw, cfg, layers)
}

// storeRootfs builds the config of a docker-import style image around one
// stored layer.
func (s *Store) storeRootfs(ctx context.Context, diffID string, size int64) (record, error) {
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: time.Now().UTC().Truncate(time.Second)},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{mustHash(diffID)}},
		History:      []v1.History{{Created: v1.Time{Time: time.Now().UTC().Truncate(time.Second)}, Comment: "imported by berth"}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return record{}, err
	}
	layer := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: mustHash(diffID)}
	return s.storeManifest(ctx, raw, cfg, []v1.Descriptor{layer})
}

func (s *Store) storeManifest(ctx context.Context, rawCfg []byte, cfg *v1.ConfigFile, layers []v1.Descriptor) (record, error) {
	id, cfgSize, err := s.writeBlob(ctx, bytes.NewReader(rawCfg), "")
	if err != nil {
		return record{}, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: mustHash(id)},
		Layers:        layers,
	}
	if m.Layers == nil {
		m.Layers = []v1.Descriptor{}
	}
	rawM, err := json.Marshal(m)
	if err != nil {
		return record{}, err
	}
	mdigest, msize, err := s.writeBlob(ctx, bytes.NewReader(rawM), "")
	if err != nil {
		return record{}, err
	}
	rec := record{Manifest: mdigest, ManifestSize: msize}
	rec.ID = id
	rec.Created = cfg.Created.Time
	rec.Config = configFrom(cfg.Config)
	for _, l := range layers {
		rec.DiffIDs = append(rec.DiffIDs, l.Digest.String())
		rec.Size += l.Size
	}
	rec.ChainIDs = chainIDs(rec.DiffIDs)
	return rec, nil
}

func configFrom(c v1.Config) Config {
	out := Config{
		Env:        c.Env,
		Cmd:        c.Cmd,
		Entrypoint: c.Entrypoint,
		WorkingDir: c.WorkingDir,
		User:       c.User,
		StopSignal: c.StopSignal,
		Labels:     c.Labels,
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	slices.Sort(out.ExposedPorts)
	return out
}

// mustHash parses digests this package computed itself.
func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(errors.New("image: internal digest " + s + " does not parse"))
	}
	return h
}
