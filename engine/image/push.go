package image

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Push sends the image ref names to its registry, blobs and manifest byte
// for byte as stored, so the registry's digest is the store's. It returns
// the manifest digest and records it as one of the image's RepoDigests.
func (s *Store) Push(ctx context.Context, ref string, opts ...Option) (string, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return "", err
	}
	n, err := parse(ref)
	if err != nil {
		return "", err
	}
	if strings.Contains(n.String(), "@") {
		return "", fmt.Errorf("push %q: name a tag, not a digest: %w", ref, errdefs.ErrInvalidArgument)
	}
	fam := FamiliarName(n.String())
	digest, err := s.push(ctx, n.String(), fam, o)
	if err != nil {
		err = registryError(fam, err)
		o.progress(Event{Ref: fam, Phase: Failed, Err: err})
		return "", err
	}
	o.progress(Event{Ref: fam, Phase: Done})
	return digest, nil
}

func (s *Store) push(ctx context.Context, ref, fam string, o *options) (string, error) {
	hold, err := s.Hold(ctx)
	if err != nil {
		return "", err
	}
	defer hold.Unlock()
	r, err := s.readRefs()
	if err != nil {
		return "", err
	}
	id, ok := r.tags[ref]
	if !ok {
		return "", fmt.Errorf("no local image %s (tag one with berth image tag): %w", fam, errdefs.ErrNotFound)
	}
	rec := r.images[id]
	img, err := s.v1Image(rec)
	if err != nil {
		return "", err
	}
	rr, err := remoteRef(ref, o.registries)
	if err != nil {
		return "", err
	}
	ropts, err := o.remote(ctx, rr.Context().RegistryStr())
	if err != nil {
		return "", err
	}
	o.progress(Event{Ref: fam, Phase: Resolving})
	mounts := mountSources(r, rr.Context(), o.registries)
	// Layers first, a few at a time, each with its own progress; then
	// Write sends config and manifest (the layers are there: it only asks).
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for i, l := range layers {
		d := rec.Layers[i]
		o.progress(Event{Ref: fam, Layer: short(d.Digest), Phase: Waiting, Total: d.Size})
		g.Go(func() error {
			updates := make(chan v1.Update, 8)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for u := range updates {
					o.progress(Event{Ref: fam, Layer: short(d.Digest), Phase: Uploading, Current: u.Complete, Total: d.Size})
				}
			}()
			lopts, err := o.remote(gctx, rr.Context().RegistryStr())
			if err != nil {
				close(updates)
				<-done
				return err
			}
			sent := &sentLayer{Layer: l}
			var up v1.Layer = sent
			if src, ok := mounts[d.Digest]; ok {
				up = &remote.MountableLayer{Layer: sent, Reference: src}
			}
			err = remote.WriteLayer(rr.Context(), up, append(lopts, remote.WithProgress(updates))...)
			<-done // WriteLayer closes updates
			if err != nil {
				return fmt.Errorf("layer %s: %w", d.Digest, err)
			}
			phase := Complete
			if !sent.opened.Load() {
				phase = Exists // there already, or mounted from another repository
			}
			o.progress(Event{Ref: fam, Layer: short(d.Digest), Phase: phase, Current: d.Size, Total: d.Size})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	if err := remote.Write(rr, img, ropts...); err != nil {
		return "", err
	}
	repo := rr.Context().Name()
	if strings.HasPrefix(repo, "index.docker.io/") {
		repo = "docker.io/" + strings.TrimPrefix(repo, "index.docker.io/")
	}
	if err := s.addRepoDigest(ctx, id, repo+"@"+rec.Manifest); err != nil {
		return "", err
	}
	return rec.Manifest, nil
}

// mountSources finds, for each layer blob, a repository of the target's
// registry that has it (one an image with the layer was pulled from or
// pushed to), so the registry can link the blob across repositories
// instead of receiving it again, as Docker does.
func mountSources(r refs, target name.Repository, reg *Registries) map[string]name.Reference {
	out := map[string]name.Reference{}
	for _, id := range slices.Sorted(maps.Keys(r.images)) {
		rec := r.images[id]
		for _, rd := range rec.RepoDigests {
			src, err := remoteRef(rd, reg)
			if err != nil || src.Context().RegistryStr() != target.RegistryStr() || src.Context().RepositoryStr() == target.RepositoryStr() {
				continue
			}
			for _, l := range rec.Layers {
				if _, ok := out[l.Digest]; !ok {
					out[l.Digest] = src
				}
			}
		}
	}
	return out
}

// sentLayer notes whether a push read the layer's bytes.
type sentLayer struct {
	v1.Layer
	opened atomic.Bool
}

func (l *sentLayer) Compressed() (io.ReadCloser, error) {
	l.opened.Store(true)
	return l.Layer.Compressed()
}

func (s *Store) addRepoDigest(ctx context.Context, id, rd string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := s.readRefs()
	if err != nil {
		return err
	}
	rec, ok := r.images[id]
	if !ok {
		return nil // removed meanwhile
	}
	for _, d := range rec.RepoDigests {
		if d == rd {
			return nil
		}
	}
	rec.RepoDigests = append(rec.RepoDigests, rd)
	r.images[id] = rec
	return s.writeRefs(r)
}

// v1Image serves a stored image to go-containerregistry from its blobs as
// they are, so what it writes has the stored digests.
func (s *Store) v1Image(rec record) (v1.Image, error) {
	raw, err := s.readBlob(rec.Manifest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", rec.Manifest, err, errdefs.ErrDataLoss)
	}
	cfg, err := s.readBlob(m.Config.Digest.String())
	if err != nil {
		return nil, err
	}
	mt := types.MediaType(rec.MediaType)
	if mt == "" {
		mt = m.MediaType
	}
	return partial.CompressedToImage(storedImage{s: s, raw: raw, cfg: cfg, mt: mt, m: m})
}

func (s *Store) readBlob(digest string) ([]byte, error) {
	f, err := s.Blob(digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest+1))
}

type storedImage struct {
	s   *Store
	raw []byte
	cfg []byte
	mt  types.MediaType
	m   *v1.Manifest
}

func (i storedImage) RawConfigFile() ([]byte, error)      { return i.cfg, nil }
func (i storedImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i storedImage) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range i.m.Layers {
		if d.Digest == h {
			return storedLayer{s: i.s, d: d}, nil
		}
	}
	if i.m.Config.Digest == h {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("blob %s: not in the image: %w", h, errdefs.ErrNotFound)
}

type storedLayer struct {
	s *Store
	d v1.Descriptor
}

func (l storedLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l storedLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l storedLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l storedLayer) Compressed() (io.ReadCloser, error)  { return l.s.Blob(l.d.Digest.String()) }
