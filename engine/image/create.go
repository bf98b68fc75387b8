package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// AddLayer stores the layer tar that write produces, gzip-compressed as a
// registry expects it, and returns its descriptor: Digest of the blob,
// DiffID of the tar. The caller holds the store (Hold) until an image or
// the build cache refers to the blob.
func (s *Store) AddLayer(ctx context.Context, write func(io.Writer) error) (Layer, error) {
	f, err := os.CreateTemp(s.path(tmpName), "layer-")
	if err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	blobHash, tarHash := sha256.New(), sha256.New()
	counted := &countWriter{w: io.MultiWriter(f, blobHash)}
	// Build layers are made once and read by every push and save; speed of
	// the build matters more than the last few percent of size.
	zw, err := gzip.NewWriterLevel(counted, gzip.BestSpeed)
	if err != nil {
		return Layer{}, err
	}
	if err := write(io.MultiWriter(zw, tarHash, ctxWriter{ctx})); err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	l := Layer{
		Digest:    "sha256:" + hex.EncodeToString(blobHash.Sum(nil)),
		DiffID:    "sha256:" + hex.EncodeToString(tarHash.Sum(nil)),
		MediaType: string(types.OCILayer),
		Size:      counted.n,
	}
	ok = true
	if err := s.commitBlob(f.Name(), l.Digest); err != nil {
		return Layer{}, fmt.Errorf("add layer: %w", err)
	}
	return l, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxWriter stops a long write when its context ends.
type ctxWriter struct{ ctx context.Context }

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// HasLayer reports whether the blob of l is stored whole.
func (s *Store) HasLayer(l Layer) bool { return s.hasBlob(l.Digest, l.Size) }

// Create stores an image made of cfg and layers (stored already, bottom
// to top; cfg's rootfs must list their diff IDs) and points each of refs
// at it. The same config and layers give the same image ID, so a rebuild
// from cache changes nothing but the tags. The caller holds the store.
func (s *Store) Create(ctx context.Context, cfg *v1.ConfigFile, layers []Layer, refs ...string) (Image, error) {
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return Image{}, fmt.Errorf("create image: config lists %d layers, %d given: %w", len(cfg.RootFS.DiffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	descs := make([]v1.Descriptor, len(layers))
	for i, l := range layers {
		if cfg.RootFS.DiffIDs[i].String() != l.DiffID {
			return Image{}, fmt.Errorf("create image: layer %d has diff ID %s, config says %s: %w", i, l.DiffID, cfg.RootFS.DiffIDs[i], errdefs.ErrInvalidArgument)
		}
		if !s.HasLayer(l) {
			return Image{}, fmt.Errorf("create image: layer %s: %w", l.Digest, errdefs.ErrNotFound)
		}
		descs[i] = v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: mustHash(l.Digest)}
	}
	var names []string
	for _, r := range refs {
		n, err := Normalize(r)
		if err != nil {
			return Image{}, err
		}
		names = append(names, n)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	// A rebuild from cache makes the image that is there already: then
	// there is nothing to write.
	sum := sha256.Sum256(raw)
	if img, ok := s.existing("sha256:"+hex.EncodeToString(sum[:]), names); ok {
		return img, nil
	}
	rec, err := s.storeManifest(ctx, raw, descs)
	if err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	first := ""
	if len(names) > 0 {
		first = names[0]
	}
	img, err := s.commit(ctx, rec, first)
	if err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	for _, n := range names[min(1, len(names)):] {
		if err := s.Tag(ctx, img.ID, n); err != nil {
			return Image{}, err
		}
	}
	if len(names) > 1 {
		return s.Get(ctx, first)
	}
	return img, nil
}

// existing returns the image with id when every one of names already
// points at it.
func (s *Store) existing(id string, names []string) (Image, bool) {
	r, err := s.readRefs()
	if err != nil {
		return Image{}, false
	}
	if _, ok := r.images[id]; !ok {
		return Image{}, false
	}
	for _, n := range names {
		if r.tags[n] != id {
			return Image{}, false
		}
	}
	ref := ""
	if len(names) > 0 {
		ref = names[0]
	}
	return r.view(id, ref), true
}

// ChainIDs computes the OCI chain IDs of layers with diffIDs, bottom to
// top: the names their unpacked layers have in the snapshot store.
func ChainIDs(diffIDs []string) []string { return chainIDs(diffIDs) }

// Collect deletes the blobs and temporary files no image needs and
// o.Blobs does not name, without removing any image.
func (s *Store) Collect(ctx context.Context, o RemoveOptions) (Removed, error) {
	return s.delete(ctx, o, func(refs, map[string][]string, *Removed) error { return nil })
}
