package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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
// first. changes are Dockerfile instructions for a root filesystem's config
// (docker import --change: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL,
// USER, VOLUME, WORKDIR).
func (s *Store) Import(ctx context.Context, r io.Reader, ref string, changes ...string) (Image, error) {
	n, err := Normalize(ref)
	if err != nil {
		return Image{}, err
	}
	if strings.Contains(n, "@") {
		return Image{}, fmt.Errorf("import %q: a digest cannot name an imported image: %w", ref, errdefs.ErrInvalidArgument)
	}
	var probe v1.Config // bad changes are refused before anything is read
	for _, c := range changes {
		if err := applyChange(&probe, c); err != nil {
			return Image{}, err
		}
	}
	// Held until the ref points at the new blobs, so a concurrent Remove's
	// garbage collection cannot delete them first.
	l, err := s.Hold(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("import %q: %w", ref, err)
	}
	defer l.Unlock()

	img, err := s.importHeld(ctx, r, n, changes)
	if err != nil {
		return Image{}, fmt.Errorf("import %q: %w", ref, err)
	}
	return img, nil
}

func (s *Store) importHeld(ctx context.Context, r io.Reader, ref string, changes []string) (Image, error) {
	a, err := s.spoolArchive(ctx, r)
	if err != nil {
		return Image{}, err
	}
	defer a.cleanup()
	if len(changes) > 0 && a.kind != kindRootfs {
		return Image{}, fmt.Errorf("--change applies to a root filesystem, not an image archive: %w", errdefs.ErrInvalidArgument)
	}
	var rec record
	switch a.kind {
	case kindDockerSave:
		m, err := dockerManifest(a.path)
		if err != nil {
			return Image{}, err
		}
		chosen := m[0]
		for _, d := range m {
			if slices.ContainsFunc(d.RepoTags, func(t string) bool { n, err := Normalize(t); return err == nil && n == ref }) {
				chosen = d
				break
			}
		}
		img, err := dockerSaveImage(a.path, chosen)
		if err != nil {
			return Image{}, err
		}
		if rec, err = s.storeUncompressed(ctx, img); err != nil {
			return Image{}, err
		}
	case kindOCILayout:
		idx, dir, err := s.openOCI(ctx, a.path)
		if err != nil {
			return Image{}, err
		}
		defer dir.cleanup()
		im, err := idx.IndexManifest()
		if err != nil {
			return Image{}, fmt.Errorf("oci index: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		var candidates []v1.Descriptor
		for _, d := range im.Manifests {
			if d.MediaType.IsImage() || d.MediaType.IsIndex() {
				candidates = append(candidates, d)
			}
		}
		if len(candidates) == 0 {
			return Image{}, fmt.Errorf("oci index holds no image: %w", errdefs.ErrInvalidArgument)
		}
		chosen := candidates[0]
		if i := slices.IndexFunc(candidates, func(d v1.Descriptor) bool { return annotatedAs(d, ref) }); i >= 0 {
			chosen = candidates[i]
		}
		img, err := imageFor(idx, chosen)
		if err != nil {
			return Image{}, err
		}
		if rec, err = s.storeOriginal(ctx, img, "", nil, layoutBlobs(img)); err != nil {
			return Image{}, err
		}
	default:
		if err := s.commitBlob(a.path, a.digest); err != nil {
			return Image{}, fmt.Errorf("store layer: %w", err)
		}
		if rec, err = s.storeRootfs(ctx, a.digest, a.size, changes); err != nil {
			return Image{}, err
		}
	}
	return s.commit(ctx, rec, ref)
}

// spooled is an archive copied (gunzipped) into the store's tmp directory.
type spooled struct {
	path, digest string
	size         int64
	kind         archiveKind
}

// cleanup removes the file; a no-op once it was renamed into blobs.
func (a spooled) cleanup() { os.Remove(a.path) }

func (s *Store) spoolArchive(ctx context.Context, r io.Reader) (spooled, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return spooled{}, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		defer zr.Close()
		src = corruptReader{zr}
	}
	path, digest, size, err := s.spool(ctx, src)
	if err != nil {
		return spooled{}, fmt.Errorf("read archive: %w", err)
	}
	a := spooled{path: path, digest: digest, size: size}
	if a.kind, err = sniff(path); err != nil {
		a.cleanup()
		return spooled{}, err
	}
	return a, nil
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

// sniff tells the archive kind from its top-level entries. An archive that
// is both (Docker 25 and later, and Save) is read as an OCI layout, whose
// blobs are kept as they are.
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
	case seen["oci-layout"] && seen["index.json"]:
		return kindOCILayout, nil
	case seen["manifest.json"]:
		return kindDockerSave, nil
	}
	return kindRootfs, nil
}

func dockerManifest(p string) (tarball.Manifest, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil {
		return nil, fmt.Errorf("docker archive manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("docker archive holds no image: %w", errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// dockerSaveImage opens one image of a docker save archive.
func dockerSaveImage(p string, d tarball.Descriptor) (v1.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	var tag *name.Tag
	if len(d.RepoTags) > 0 {
		t, err := name.NewTag(d.RepoTags[0])
		if err != nil {
			return nil, fmt.Errorf("docker archive tag %q: %v: %w", d.RepoTags[0], err, errdefs.ErrInvalidArgument)
		}
		tag = &t
	} else if m, err := dockerManifest(p); err == nil && len(m) > 1 {
		return nil, fmt.Errorf("docker archive with several images, one untagged: %w", errdefs.ErrNotImplemented)
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("docker archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

type tmpDir string

func (d tmpDir) cleanup() { os.RemoveAll(string(d)) }

// openOCI unpacks a layout archive (untrusted, so through Apply) into a
// temporary directory, which the caller cleans up.
func (s *Store) openOCI(ctx context.Context, p string) (v1.ImageIndex, tmpDir, error) {
	dir, err := os.MkdirTemp(s.path(tmpName), "oci-")
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(p)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	_, err = Apply(ctx, dir, f)
	f.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("oci layout: %w", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("oci layout: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return idx, tmpDir(dir), nil
}

// imageFor opens the image d names in idx; a nested index is a
// multi-platform image, of which this machine's is taken.
func imageFor(idx v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	if d.MediaType.IsImage() {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("oci image %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
		}
		return img, nil
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci index %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	o, _ := makeOptions(nil)
	h, err := choosePlatform(child, o.platform)
	if err != nil {
		return nil, err
	}
	img, err := child.Image(h)
	if err != nil {
		return nil, fmt.Errorf("oci image %s: %v: %w", h, err, errdefs.ErrInvalidArgument)
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

// storeUncompressed copies img's layers uncompressed (verified against the
// diff IDs), its config and a new manifest into blobs: for docker save
// archives, whose layers are tars and whose manifest is not a registry's.
func (s *Store) storeUncompressed(ctx context.Context, img v1.Image) (record, error) {
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
	return s.storeManifest(ctx, raw, layers)
}

// storeRootfs builds the config of a docker-import style image around one
// stored layer.
func (s *Store) storeRootfs(ctx context.Context, diffID string, size int64, changes []string) (record, error) {
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: time.Now().UTC().Truncate(time.Second)},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{mustHash(diffID)}},
		History:      []v1.History{{Created: v1.Time{Time: time.Now().UTC().Truncate(time.Second)}, Comment: "imported by berth"}},
	}
	for _, c := range changes {
		if err := applyChange(&cfg.Config, c); err != nil {
			return record{}, err
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return record{}, err
	}
	layer := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: mustHash(diffID)}
	return s.storeManifest(ctx, raw, []v1.Descriptor{layer})
}

// storeManifest writes a config and an OCI manifest of layers, which are
// stored already.
func (s *Store) storeManifest(ctx context.Context, rawCfg []byte, layers []v1.Descriptor) (record, error) {
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
	if _, _, err := s.writeBlob(ctx, bytes.NewReader(rawM), ""); err != nil {
		return record{}, err
	}
	return newRecord(rawM, rawCfg)
}

// newRecord describes an image from its manifest and config, whose blobs
// are stored; it refuses what no runtime could use.
func newRecord(rawManifest, rawCfg []byte) (record, error) {
	if len(rawManifest) > maxManifest {
		return record{}, fmt.Errorf("manifest of %d bytes: over the %d byte limit: %w", len(rawManifest), maxManifest, errdefs.ErrInvalidArgument)
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return record{}, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return record{}, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return record{}, fmt.Errorf("manifest has %d layers, config %d: %w", len(m.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	if len(m.Layers) > maxLayers {
		return record{}, fmt.Errorf("%d layers: over the %d layer limit: %w", len(m.Layers), maxLayers, errdefs.ErrInvalidArgument)
	}
	sum := sha256.Sum256(rawManifest)
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	rec := record{Manifest: "sha256:" + hex.EncodeToString(sum[:]), ManifestSize: int64(len(rawManifest))}
	rec.MediaType = string(mt)
	rec.ID = m.Config.Digest.String()
	rec.Digest = rec.Manifest
	rec.Created = cfg.Created.Time
	rec.Config = configFrom(cfg.Config)
	for i, l := range m.Layers {
		if !isLayer(l.MediaType) {
			return record{}, fmt.Errorf("layer %s: media type %q: %w", l.Digest, l.MediaType, errdefs.ErrNotImplemented)
		}
		d := cfg.RootFS.DiffIDs[i].String()
		rec.DiffIDs = append(rec.DiffIDs, d)
		rec.Layers = append(rec.Layers, Layer{Digest: l.Digest.String(), DiffID: d, MediaType: string(l.MediaType), Size: l.Size})
		rec.Size += l.Size
	}
	rec.ChainIDs = chainIDs(rec.DiffIDs)
	return rec, nil
}

// Limits on what an image may declare: Docker's manifest size limit, and
// far more layers than overlayfs can stack.
const (
	maxManifest = 4 << 20
	maxLayers   = 500
)

func isLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer:
		return true
	}
	return false
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
	out.ExposedPorts = slices.Sorted(maps.Keys(c.ExposedPorts))
	out.Volumes = slices.Sorted(maps.Keys(c.Volumes))
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &Healthcheck{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries,
		}
	}
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
