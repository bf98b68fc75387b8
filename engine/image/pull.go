package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// Phase is a step of a pull or push, of an image or of one layer.
type Phase int

// The phases, in the order they happen.
const (
	Resolving   Phase = iota // image: asking the registry
	Waiting                  // layer: queued behind others
	Downloading              // layer: bytes arriving (Current of Total)
	Uploading                // layer: bytes leaving
	Exists                   // layer: already here (pull) or there (push)
	Complete                 // layer: stored (pull) or sent (push)
	Done                     // image: pulled or pushed
	Failed                   // image: Err says why
)

// Event reports a pull's or push's progress. The engine never prints: a
// caller that wants a display turns events into one.
type Event struct {
	Ref            string // the image, familiar ("redis:7")
	Layer          string // the layer's short digest; "" for the image
	Phase          Phase
	Current, Total int64 // bytes of the layer
	Err            error
}

// Option tunes a Pull or Push.
type Option func(*options) error

type options struct {
	platform   v1.Platform
	progress   func(Event)
	registries *Registries
	jobs       int
}

// WithPlatform chooses the manifest of a multi-platform image:
// "linux/arm64", "linux/arm/v7". The default is this machine's.
func WithPlatform(p string) Option {
	return func(o *options) error {
		if p == "" {
			return nil
		}
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return fmt.Errorf("platform %q: %v: %w", p, err, errdefs.ErrInvalidArgument)
		}
		if pl.OS != "linux" {
			return fmt.Errorf("platform %q: only linux images run here: %w", p, errdefs.ErrInvalidArgument)
		}
		o.platform = *pl
		return nil
	}
}

// WithProgress has f called with every event; f must not block for long.
func WithProgress(f func(Event)) Option {
	return func(o *options) error { o.progress = f; return nil }
}

// WithRegistries sets credentials, CAs and insecure hosts.
func WithRegistries(r *Registries) Option {
	return func(o *options) error { o.registries = r; return nil }
}

// layerJobs is how many layers of one image move at once: Docker's default.
const layerJobs = 3

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		progress: func(Event) {},
		jobs:     layerJobs,
	}
	if runtime.GOARCH == "arm" {
		o.platform.Variant = "v7"
	}
	for _, f := range opts {
		if err := f(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func (o *options) remote(ctx context.Context, host string) ([]remote.Option, error) {
	t, err := o.registries.transport(host)
	if err != nil {
		return nil, err
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(t),
		remote.WithAuthFromKeychain(o.registries.keychain()),
		remote.WithUserAgent("berth"),
	}, nil
}

// Pull fetches ref from its registry and stores it as it came: the
// manifest, config and compressed layers byte for byte, each verified by
// its digest. Layers already stored are not fetched again, so an
// interrupted pull resumes where it stopped; a blob appears in the store
// only once complete and verified. A tag reference is tagged; a digest
// reference is stored untagged and found again by that digest.
func (s *Store) Pull(ctx context.Context, ref string, opts ...Option) (Image, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return Image{}, err
	}
	n, err := parse(ref)
	if err != nil {
		return Image{}, err
	}
	fam := FamiliarName(n.String())
	img, err := s.pull(ctx, n.String(), fam, o)
	if err != nil {
		err = registryError(fam, err)
		o.progress(Event{Ref: fam, Phase: Failed, Err: err})
		return Image{}, err
	}
	o.progress(Event{Ref: fam, Phase: Done})
	return img, nil
}

func (s *Store) pull(ctx context.Context, ref, fam string, o *options) (Image, error) {
	o.progress(Event{Ref: fam, Phase: Resolving})
	rr, err := remoteRef(ref, o.registries)
	if err != nil {
		return Image{}, err
	}
	ropts, err := o.remote(ctx, rr.Context().RegistryStr())
	if err != nil {
		return Image{}, err
	}
	desc, err := remote.Get(rr, ropts...)
	if err != nil {
		return Image{}, err
	}
	if desc.Size > maxManifest {
		return Image{}, fmt.Errorf("manifest of %d bytes: over the %d byte limit: %w", desc.Size, maxManifest, errdefs.ErrInvalidArgument)
	}
	hold, err := s.Hold(ctx)
	if err != nil {
		return Image{}, err
	}
	defer hold.Unlock()

	var img v1.Image
	var index []byte
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return Image{}, err
		}
		child, err := choosePlatform(idx, o.platform)
		if err != nil {
			return Image{}, err
		}
		if img, err = idx.Image(child); err != nil {
			return Image{}, err
		}
		index = desc.Manifest
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return Image{}, err
		}
	default:
		return Image{}, fmt.Errorf("media type %q: not an image: %w", desc.MediaType, errdefs.ErrNotImplemented)
	}
	fetch, err := o.blobFetcher(ctx, rr.Context())
	if err != nil {
		return Image{}, err
	}
	rec, err := s.storeOriginal(ctx, img, fam, o, fetch)
	if err != nil {
		return Image{}, err
	}
	if index != nil {
		if _, _, err := s.writeBlob(ctx, bytes.NewReader(index), desc.Digest.String()); err != nil {
			return Image{}, err
		}
		rec.Index = desc.Digest.String()
	}
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	rec.RepoDigests = []string{repo + "@" + desc.Digest.String()}
	rec.Pulled = time.Now().UTC()
	tag := ref
	if strings.Contains(ref, "@") {
		tag = ""
	}
	return s.commit(ctx, rec, tag)
}

// choosePlatform picks the manifest for p from a multi-platform index, as
// Docker does: same OS and architecture, the variant if both say one.
func choosePlatform(idx v1.ImageIndex, p v1.Platform) (v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	var seen []string
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		seen = append(seen, d.Platform.String())
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || d.Platform.Variant == "" || d.Platform.Variant == p.Variant) {
			return d.Digest, nil
		}
	}
	return v1.Hash{}, fmt.Errorf("no manifest for platform %s in the image index (it has %s): %w", p.String(), strings.Join(seen, ", "), errdefs.ErrNotFound)
}

// fetchFunc opens blob d from byte from on; it returns where the body
// starts: from, or 0 when the source sends the whole blob instead.
type fetchFunc func(d v1.Descriptor, from int64) (io.ReadCloser, int64, error)

// blobFetcher opens blobs of repo straight from its registry, unverified:
// fetchBlob checks digest and size itself, so a corrupted blob is refused
// as DataLoss, whoever sent it. From a byte past 0 it asks for the rest
// only (a Range request); a registry that answers with the whole blob
// starts it over.
func (o *options) blobFetcher(ctx context.Context, repo name.Repository) (fetchFunc, error) {
	base, err := o.registries.transport(repo.RegistryStr())
	if err != nil {
		return nil, err
	}
	auth, err := authn.Resolve(ctx, o.registries.keychain(), repo)
	if err != nil {
		return nil, err
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: t}
	return func(d v1.Descriptor, from int64) (io.ReadCloser, int64, error) {
		u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d.Digest)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, 0, err
		}
		if from > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, d.Size-1))
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent); err != nil {
			resp.Body.Close()
			return nil, 0, err
		}
		if resp.StatusCode == http.StatusPartialContent {
			if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", from)) {
				resp.Body.Close()
				return nil, 0, fmt.Errorf("blob %s: asked for bytes from %d, the registry sent %q: %w", d.Digest, from, resp.Header.Get("Content-Range"), errdefs.ErrUnavailable)
			}
			return resp.Body, from, nil
		}
		return resp.Body, 0, nil
	}, nil
}

// layoutBlobs opens the layers of an image read from an OCI layout, each
// from its start.
func layoutBlobs(img v1.Image) fetchFunc {
	return func(d v1.Descriptor, _ int64) (io.ReadCloser, int64, error) {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, 0, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
		rc, err := l.Compressed()
		return rc, 0, err
	}
}

// storeOriginal stores img's blobs as they are: config first (a bad one is
// refused before any layer moves), layers (those missing, a few at a time,
// opened by fetch), then the manifest.
func (s *Store) storeOriginal(ctx context.Context, img v1.Image, fam string, o *options, fetch fetchFunc) (record, error) {
	if o == nil {
		o, _ = makeOptions(nil)
	}
	rawM, err := img.RawManifest()
	if err != nil {
		return record{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return record{}, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return record{}, fmt.Errorf("config: %w", err)
	}
	if _, _, err := s.writeBlob(ctx, bytes.NewReader(rawCfg), m.Config.Digest.String()); err != nil {
		return record{}, fmt.Errorf("config: %w", err)
	}
	rec, err := newRecord(rawM, rawCfg)
	if err != nil {
		return record{}, err
	}
	var todo []v1.Descriptor
	for _, l := range m.Layers {
		if s.hasBlob(l.Digest.String(), l.Size) {
			o.progress(Event{Ref: fam, Layer: short(l.Digest.String()), Phase: Exists, Total: l.Size})
			continue
		}
		o.progress(Event{Ref: fam, Layer: short(l.Digest.String()), Phase: Waiting, Total: l.Size})
		todo = append(todo, l)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for _, d := range todo {
		g.Go(func() error {
			err := s.fetchBlob(gctx, d, fetch, func(n int64) {
				o.progress(Event{Ref: fam, Layer: short(d.Digest.String()), Phase: Downloading, Current: n, Total: d.Size})
			})
			if err != nil {
				return fmt.Errorf("layer %s: %w", d.Digest, err)
			}
			o.progress(Event{Ref: fam, Layer: short(d.Digest.String()), Phase: Complete, Current: d.Size, Total: d.Size})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return record{}, err
	}
	if _, _, err := s.writeBlob(ctx, bytes.NewReader(rawM), rec.Manifest); err != nil {
		return record{}, err
	}
	return rec, nil
}

// short is a digest's first 12 hex digits, as Docker names layers.
func short(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// counter reports bytes read, at most every 100 ms.
type counter struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= 100*time.Millisecond {
		c.last = now
		c.report(c.n)
	}
	return n, err
}
