package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Save writes the images refs name as one tar archive that is both an OCI
// image layout (index.json, blobs/sha256) and a docker save archive
// (manifest.json), as Docker 25 and later write it: docker load, skopeo's
// docker-archive: and oci-archive:, and Load all read it. Blobs are written
// as stored, so digests survive the round trip.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string) error {
	r, err := s.readRefs()
	if err != nil {
		return err
	}
	type entry struct {
		id   string
		tags []string
	}
	var order []string
	entries := map[string]*entry{}
	for _, ref := range refs {
		id, tag, err := r.resolve(ref)
		if err != nil {
			return err
		}
		e := entries[id]
		if e == nil {
			e = &entry{id: id}
			entries[id] = e
			order = append(order, id)
		}
		if tag != "" { // by ID or digest: saved untagged, as docker save does
			e.tags = append(e.tags, tag)
		}
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	now := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	writeBlob := func(digest string, size int64) error {
		if written[digest] {
			return nil
		}
		written[digest] = true
		f, err := s.Blob(digest)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:"), Mode: 0o644, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, ctxReader{ctx, f})
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	type dockerEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var docker []dockerEntry
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, id := range order {
		rec := r.images[id]
		de := dockerEntry{Config: "blobs/sha256/" + strings.TrimPrefix(id, "sha256:"), RepoTags: []string{}}
		cfg, err := s.Blob(id)
		if err != nil {
			return err
		}
		st, err := cfg.Stat()
		cfg.Close()
		if err != nil {
			return err
		}
		if err := writeBlob(id, st.Size()); err != nil {
			return err
		}
		for _, l := range rec.Layers {
			if err := writeBlob(l.Digest, l.Size); err != nil {
				return err
			}
			de.Layers = append(de.Layers, "blobs/sha256/"+strings.TrimPrefix(l.Digest, "sha256:"))
		}
		if err := writeBlob(rec.Manifest, rec.ManifestSize); err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: types.MediaType(rec.MediaType), Size: rec.ManifestSize, Digest: mustHash(rec.Manifest)}
		if desc.MediaType == "" {
			desc.MediaType = types.OCIManifestSchema1
		}
		tags := slices.Compact(slices.Sorted(slices.Values(entries[id].tags)))
		if len(tags) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, t := range tags {
			d := desc
			_, tag := Split(t)
			// Docker's two annotations: the full name, and the tag alone
			// as the OCI layout spec and skopeo read it.
			d.Annotations = map[string]string{"io.containerd.image.name": t, refNameAnnotation: tag}
			idx.Manifests = append(idx.Manifests, d)
			de.RepoTags = append(de.RepoTags, FamiliarName(t))
		}
		docker = append(docker, de)
	}
	files := []struct {
		name string
		v    any
	}{{"oci-layout", map[string]string{"imageLayoutVersion": "1.0.0"}}, {"index.json", idx}, {"manifest.json", docker}}
	for _, f := range files {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(f.name, data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Load stores every image of a docker save or OCI layout archive (gzip
// allowed) under the names the archive gives it, as docker load does; an
// image with no name is stored untagged. It returns the stored images.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) {
	hold, err := s.Hold(ctx)
	if err != nil {
		return nil, err
	}
	defer hold.Unlock()
	a, err := s.spoolArchive(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer a.cleanup()
	var out []Image
	switch a.kind {
	case kindOCILayout:
		out, err = s.loadOCI(ctx, a.path)
	case kindDockerSave:
		out, err = s.loadDockerSave(ctx, a.path)
	default:
		err = fmt.Errorf("not a docker save or OCI archive (import a root filesystem with berth image import): %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return out, nil
}

// names gives the references an index entry names, normalized.
func names(d v1.Descriptor) []string {
	var out []string
	if n, err := Normalize(d.Annotations["io.containerd.image.name"]); err == nil {
		out = append(out, n)
	} else if n, err := Normalize(d.Annotations[refNameAnnotation]); err == nil && strings.Contains(d.Annotations[refNameAnnotation], "/") {
		out = append(out, n)
	}
	return out
}

func (s *Store) loadOCI(ctx context.Context, archive string) ([]Image, error) {
	idx, dir, err := s.openOCI(ctx, archive)
	if err != nil {
		return nil, err
	}
	defer dir.cleanup()
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []Image
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		img, err := imageFor(idx, d)
		if err != nil {
			return nil, err
		}
		rec, err := s.storeOriginal(ctx, img, "", nil, layoutBlobs(img))
		if err != nil {
			return nil, err
		}
		refs := names(d)
		if len(refs) == 0 {
			refs = []string{""}
		}
		for _, ref := range refs {
			i, err := s.commit(ctx, rec, ref)
			if err != nil {
				return nil, err
			}
			out = append(out, i)
		}
	}
	return out, nil
}

func (s *Store) loadDockerSave(ctx context.Context, archive string) ([]Image, error) {
	m, err := dockerManifest(archive)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range m {
		tags := slices.Clone(d.RepoTags)
		if len(tags) == 0 {
			tags = []string{""}
		}
		img, err := dockerSaveImage(archive, d)
		if err != nil {
			return nil, err
		}
		rec, err := s.storeUncompressed(ctx, img)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			ref := ""
			if t != "" {
				if ref, err = Normalize(t); err != nil {
					return nil, err
				}
			}
			i, err := s.commit(ctx, rec, ref)
			if err != nil {
				return nil, err
			}
			out = append(out, i)
		}
	}
	return out, nil
}
