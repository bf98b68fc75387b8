package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Store is a content store laid out as an OCI image layout (blobs/sha256,
// index.json, oci-layout) plus refs.json, the source of truth for which
// images exist and which reference names which image. Blobs are kept as
// they came (a pulled layer stays compressed, a manifest byte for byte), so
// digests match the registry's and a push sends the same bytes back.
type Store struct {
	root string
	memo refsMemo
}

// Config is the part of an image's run configuration a container needs.
type Config struct {
	Env, Cmd, Entrypoint []string
	WorkingDir, User     string
	StopSignal           string
	Labels               map[string]string
	ExposedPorts         []string // "80/tcp", sorted
	Volumes              []string // sorted
	Healthcheck          *Healthcheck
}

// Healthcheck is an image's HEALTHCHECK, as Docker records it in the config.
type Healthcheck struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// Layer is one layer blob of an image.
type Layer struct {
	Digest    string `json:"digest"` // of the blob as stored (compressed as it came)
	DiffID    string `json:"diffID"` // of the uncompressed tar
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"` // of the blob
}

// Image describes one stored image.
type Image struct {
	Ref         string    // the normalized reference it was found by or listed under; "" for an untagged image
	ID          string    // "sha256:<config digest>"
	Digest      string    // of the manifest
	MediaType   string    // of the manifest
	RepoDigests []string  // "<repository>@<digest>" of where it was pulled from or pushed to
	Tags        []string  // every normalized reference naming it, sorted
	Config      Config    //
	DiffIDs     []string  // bottom to top
	ChainIDs    []string  // bottom to top, OCI chain IDs
	Layers      []Layer   // bottom to top
	Created     time.Time //
	Pulled      time.Time // when it was last pulled; zero if never
	Size        int64     // bytes of its layer blobs
}

// record is one image of refs.json.
type record struct {
	Image
	Manifest     string `json:"manifest"`
	ManifestSize int64  `json:"manifestSize"`
	// Index is the digest of the multi-platform index the manifest was
	// chosen from, kept so a pull by that digest finds the image.
	Index string `json:"index,omitempty"`
}

// refsFile is refs.json. Version 1 (Berth before pull) kept one record per
// reference with uncompressed layers; readRefs converts it on the fly and
// the next write saves version 2. Those images keep working: their layer
// blobs are uncompressed tars, which unpack reads as they are.
type refsFile struct {
	Version int               `json:"version"`
	Images  map[string]record `json:"images,omitempty"` // by image ID
	Tags    map[string]string `json:"tags,omitempty"`   // normalized reference -> image ID
	V1Refs  map[string]record `json:"refs,omitempty"`
}

type refs struct {
	images map[string]record
	tags   map[string]string
}

const (
	refsName   = "refs.json"
	lockName   = "refs.lock"
	gcLockName = "gc.lock"
	tmpName    = "tmp"
	blobsName  = "blobs/sha256"

	refNameAnnotation = "org.opencontainers.image.ref.name"
)

// Open opens (creating if needed) the store under root.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	for _, d := range []string{root, s.path(blobsName), s.path(tmpName)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	if _, err := os.Stat(s.path("oci-layout")); errors.Is(err, fs.ErrNotExist) {
		layout := map[string]string{"imageLayoutVersion": "1.0.0"}
		if err := atomicfile.WriteJSON(s.path("oci-layout"), layout, 0o600); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	if _, err := os.Stat(s.path("index.json")); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeIndex(refs{}); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) blobPath(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !isHex(h) || len(h) != sha256.Size*2 {
		return "", fmt.Errorf("digest %q: %w", digest, errdefs.ErrInvalidArgument)
	}
	return s.path(blobsName, h), nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// lock guards read-modify-write of refs.json across processes. Readers need
// no lock: refs.json is replaced atomically.
func (s *Store) lock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, s.path(lockName))
}

// Hold keeps garbage collection away while the caller adds blobs or starts
// using an image (a pull, an import, a container's create or start): any
// number of holders at once, never during a Remove or Prune, which take the
// same lock exclusively. Unlock it when done.
func (s *Store) Hold(ctx context.Context) (*lockfile.Lock, error) {
	l, err := lockfile.AcquireShared(ctx, s.path(gcLockName))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return l, nil
}

func (s *Store) exclusive(ctx context.Context) (*lockfile.Lock, error) {
	l, err := lockfile.Acquire(ctx, s.path(gcLockName))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return l, nil
}

// readRefs returns refs.json's images and tags, the caller's to change.
// The decoded file is kept (refsMemo), so a command that reads it again
// before anyone replaces it does not decode it twice.
func (s *Store) readRefs() (refs, error) {
	path := s.path(refsName)
	readAt := time.Now()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return refs{images: map[string]record{}, tags: map[string]string{}}, nil
	}
	if err != nil {
		return refs{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return refs{}, fmt.Errorf("read %s: %w", path, err)
	}
	id, known := identify(fi)
	if known {
		if r, ok := s.memo.get(id); ok {
			return r, nil
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return refs{}, fmt.Errorf("read %s: %w", path, err)
	}
	refsDecodes.Add(1)
	var rf refsFile
	if err := json.Unmarshal(data, &rf); err != nil {
		return refs{}, fmt.Errorf("read %s: %w", path, err)
	}
	r := refs{images: map[string]record{}, tags: map[string]string{}}
	if rf.Version == 0 {
		for ref, rec := range rf.V1Refs {
			r.tags[ref] = rec.ID
			r.images[rec.ID] = s.fromV1(rec)
		}
	} else {
		maps.Copy(r.images, rf.Images)
		maps.Copy(r.tags, rf.Tags)
	}
	if known {
		s.memo.put(id, r, readAt)
	}
	return r, nil
}

// fromV1 fills the layer list of a version 1 record: its layer blobs are
// the uncompressed tars, stored under their diff IDs.
func (s *Store) fromV1(rec record) record {
	rec.Ref = ""
	rec.Digest = rec.Manifest
	rec.MediaType = string(types.OCIManifestSchema1)
	rec.Layers = nil
	for _, d := range rec.DiffIDs {
		l := Layer{Digest: d, DiffID: d, MediaType: string(types.OCIUncompressedLayer)}
		if p, err := s.blobPath(d); err == nil {
			if st, err := os.Stat(p); err == nil {
				l.Size = st.Size()
			}
		}
		rec.Layers = append(rec.Layers, l)
	}
	return rec
}

// writeRefs saves refs.json and mirrors it into index.json so the directory
// stays a valid OCI layout other tools can read.
func (s *Store) writeRefs(r refs) error {
	f := refsFile{Version: 2, Images: r.images, Tags: r.tags}
	if err := atomicfile.WriteJSON(s.path(refsName), f, 0o600); err != nil {
		return fmt.Errorf("write refs: %w", err)
	}
	return s.writeIndex(r)
}

func (s *Store) writeIndex(r refs) error {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, ref := range slices.Sorted(maps.Keys(r.tags)) {
		rec := r.images[r.tags[ref]]
		h, err := v1.NewHash(rec.Manifest)
		if err != nil {
			return fmt.Errorf("ref %q: manifest digest: %w", ref, err)
		}
		mt := types.MediaType(rec.MediaType)
		if mt == "" {
			mt = types.OCIManifestSchema1
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:   mt,
			Size:        rec.ManifestSize,
			Digest:      h,
			Annotations: map[string]string{refNameAnnotation: ref},
		})
	}
	if err := atomicfile.WriteJSON(s.path("index.json"), idx, 0o600); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// view is a record as callers see it, named by ref.
func (r refs) view(id, ref string) Image {
	img := r.images[id].Image
	img.Ref = ref
	img.Tags = nil
	for t, tid := range r.tags {
		if tid == id {
			img.Tags = append(img.Tags, t)
		}
	}
	slices.Sort(img.Tags)
	if ref == "" && len(img.Tags) > 0 {
		img.Ref = img.Tags[0]
	}
	return img
}

// Get returns the image stored under ref, which may also be an image ID
// ("sha256:<hex>"), a unique prefix of one, or a digest reference
// ("redis@sha256:...") matching the digest it was pulled by.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) {
	r, err := s.readRefs()
	if err != nil {
		return Image{}, err
	}
	id, tag, err := r.resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return r.view(id, tag), nil
}

// resolve finds the image ID ref names, and the tag it was named by ("" when
// named by ID or digest).
func (r refs) resolve(ref string) (id, tag string, err error) {
	if n, perr := parse(ref); perr == nil {
		if id, ok := r.tags[n.String()]; ok {
			return id, n.String(), nil
		}
		if repo, dgst, ok := strings.Cut(n.String(), "@"); ok {
			for _, rid := range slices.Sorted(maps.Keys(r.images)) {
				rec := r.images[rid]
				if slices.Contains(rec.RepoDigests, n.String()) ||
					(rec.Manifest == dgst || rec.Index == dgst) && r.hasRepo(rid, repo) {
					return rid, "", nil
				}
			}
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if !isHex(prefix) {
		return "", "", fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	for rid := range r.images {
		if !strings.HasPrefix(strings.TrimPrefix(rid, "sha256:"), prefix) {
			continue
		}
		if id != "" {
			return "", "", fmt.Errorf("image %q: ambiguous id prefix: %w", ref, errdefs.ErrInvalidArgument)
		}
		id = rid
	}
	if id == "" {
		return "", "", fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return id, "", nil
}

func (r refs) hasRepo(id, repo string) bool {
	for t, tid := range r.tags {
		if tid == id && strings.HasPrefix(t, repo+":") {
			return true
		}
	}
	return slices.ContainsFunc(r.images[id].RepoDigests, func(d string) bool { return strings.HasPrefix(d, repo+"@") })
}

// List returns one entry per tag, sorted by Ref, then the untagged images
// (Ref ""), sorted by ID.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	r, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(r.tags))
	tagged := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(r.tags)) {
		out = append(out, r.view(r.tags[k], k))
		tagged[r.tags[k]] = true
	}
	for _, id := range slices.Sorted(maps.Keys(r.images)) {
		if !tagged[id] {
			out = append(out, r.view(id, ""))
		}
	}
	return out, nil
}

// Tag makes target name the image source names.
func (s *Store) Tag(ctx context.Context, source, target string) error {
	n, err := parse(target)
	if err != nil {
		return err
	}
	if strings.Contains(n.String(), "@") {
		return fmt.Errorf("tag %q: a digest cannot be a tag: %w", target, errdefs.ErrInvalidArgument)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("tag %q: %w", target, err)
	}
	defer l.Unlock()
	r, err := s.readRefs()
	if err != nil {
		return err
	}
	id, _, err := r.resolve(source)
	if err != nil {
		return err
	}
	r.tags[n.String()] = id
	return s.writeRefs(r)
}

// RemoveOptions tune Remove and Prune.
type RemoveOptions struct {
	// Force removes a reference to an image containers use (the image
	// itself stays, untagged, until they are gone) and every tag of an
	// image named by ID.
	Force bool
	// Users returns, per image ID, the containers that use it. It is called
	// with garbage collection held off, so no container starts using an
	// image between the check and the removal.
	Users func(ctx context.Context) (map[string][]string, error)
	// Blobs returns digests of blobs to keep though no image needs them
	// (the build cache's layers); called with garbage collection held off.
	Blobs func(ctx context.Context) (map[string]bool, error)
}

// Removed says what Remove or Prune did, in Docker's words.
type Removed struct {
	Untagged []string // familiar references
	Deleted  []string // image IDs
	Blobs    int      // blobs removed
	Bytes    int64    // bytes they held
}

// Remove deletes ref. A tag is untagged; the image goes with its last tag
// unless containers use it. An image ID removes the image and all its tags
// (several tags need Force). Without Force an image containers use is
// refused with a Conflict naming them. Blobs no image needs any more are
// deleted.
func (s *Store) Remove(ctx context.Context, ref string, o RemoveOptions) (Removed, error) {
	return s.delete(ctx, o, func(r refs, users map[string][]string, out *Removed) error {
		id, tag, err := r.resolve(ref)
		if err != nil {
			return err
		}
		img := r.view(id, tag)
		if u := users[id]; len(u) > 0 && !o.Force {
			return fmt.Errorf("image %q: container %s is using it (use -f to untag it anyway): %w", ref, strings.Join(u, ", "), errdefs.ErrConflict)
		}
		untag := []string{tag}
		if tag == "" {
			if len(img.Tags) > 1 && !o.Force {
				return fmt.Errorf("image %q is referenced by %d tags (%s): name one, or use -f: %w", ref, len(img.Tags), strings.Join(img.Tags, ", "), errdefs.ErrConflict)
			}
			untag = img.Tags
		}
		for _, t := range untag {
			if t != "" {
				delete(r.tags, t)
				out.Untagged = append(out.Untagged, FamiliarName(t))
			}
		}
		if !r.tagged(id) && len(users[id]) == 0 {
			delete(r.images, id)
			out.Deleted = append(out.Deleted, id)
		}
		return nil
	})
}

// delete runs f, which drops tags and images from r, with garbage
// collection held exclusively and refs.json locked; then it saves r and
// removes the blobs no image needs any more.
func (s *Store) delete(ctx context.Context, o RemoveOptions, f func(r refs, users map[string][]string, out *Removed) error) (Removed, error) {
	var out Removed
	gl, err := s.exclusive(ctx)
	if err != nil {
		return out, err
	}
	defer gl.Unlock()
	users, err := o.users(ctx)
	if err != nil {
		return out, err
	}
	l, err := s.lock(ctx)
	if err != nil {
		return out, err
	}
	defer l.Unlock()
	r, err := s.readRefs()
	if err != nil {
		return out, err
	}
	if err := f(r, users, &out); err != nil {
		return out, err
	}
	if err := s.writeRefs(r); err != nil {
		return out, err
	}
	keep, err := o.blobs(ctx)
	if err != nil {
		return out, err
	}
	out.Blobs, out.Bytes, err = s.gc(r, keep)
	return out, err
}

func (o RemoveOptions) users(ctx context.Context) (map[string][]string, error) {
	if o.Users == nil {
		return nil, nil
	}
	u, err := o.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("image users: %w", err)
	}
	return u, nil
}

func (o RemoveOptions) blobs(ctx context.Context) (map[string]bool, error) {
	if o.Blobs == nil {
		return nil, nil
	}
	b, err := o.Blobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("blobs to keep: %w", err)
	}
	return b, nil
}

func (r refs) tagged(id string) bool {
	for _, tid := range r.tags {
		if tid == id {
			return true
		}
	}
	return false
}

// Prune deletes untagged images no container uses (with all, every image
// no container uses), then every blob and temporary file no image needs:
// what a crashed pull or import left behind too.
func (s *Store) Prune(ctx context.Context, all bool, o RemoveOptions) (Removed, error) {
	return s.delete(ctx, o, func(r refs, users map[string][]string, out *Removed) error {
		for _, id := range slices.Sorted(maps.Keys(r.images)) {
			if len(users[id]) > 0 || (!all && r.tagged(id)) {
				continue
			}
			for _, t := range r.view(id, "").Tags {
				delete(r.tags, t)
				out.Untagged = append(out.Untagged, FamiliarName(t))
			}
			delete(r.images, id)
			out.Deleted = append(out.Deleted, id)
		}
		return nil
	})
}

// gc removes blobs and temporary files no image needs and keep does not
// name. Callers hold the gc lock exclusively, and everything that writes
// blobs holds it shared until a ref points at them, so nothing in flight
// is lost.
func (s *Store) gc(r refs, extra map[string]bool) (int, int64, error) {
	keep := maps.Clone(extra)
	if keep == nil {
		keep = map[string]bool{}
	}
	for _, rec := range r.images {
		keep[rec.Manifest] = true
		keep[rec.Index] = true
		keep[rec.ID] = true
		for _, l := range rec.Layers {
			keep[l.Digest] = true
		}
	}
	ents, err := os.ReadDir(s.path(blobsName))
	if err != nil {
		return 0, 0, fmt.Errorf("gc: %w", err)
	}
	var n int
	var size int64
	for _, e := range ents {
		if keep["sha256:"+e.Name()] {
			continue
		}
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
		if err := os.RemoveAll(s.path(blobsName, e.Name())); err != nil {
			return n, size, fmt.Errorf("gc: %w", err)
		}
		n++
	}
	tmps, err := os.ReadDir(s.path(tmpName))
	if err != nil {
		return n, size, fmt.Errorf("gc: %w", err)
	}
	for _, e := range tmps {
		if err := os.RemoveAll(s.path(tmpName, e.Name())); err != nil {
			return n, size, fmt.Errorf("gc: %w", err)
		}
	}
	return n, size, atomicfile.SyncDir(s.path(blobsName))
}

// commit stores rec and points ref (if any) at it, returning the image as
// seen through ref.
func (s *Store) commit(ctx context.Context, rec record, ref string) (Image, error) {
	l, err := s.lock(ctx)
	if err != nil {
		return Image{}, err
	}
	defer l.Unlock()
	r, err := s.readRefs()
	if err != nil {
		return Image{}, err
	}
	if old, ok := r.images[rec.ID]; ok {
		// The same image again, perhaps by another name: keep every
		// registry digest it is known by.
		for _, d := range old.RepoDigests {
			if !slices.Contains(rec.RepoDigests, d) {
				rec.RepoDigests = append(rec.RepoDigests, d)
			}
		}
		slices.Sort(rec.RepoDigests)
	}
	rec.Ref, rec.Tags = "", nil
	r.images[rec.ID] = rec
	if ref != "" {
		r.tags[ref] = rec.ID
	}
	if err := s.writeRefs(r); err != nil {
		return Image{}, err
	}
	return r.view(rec.ID, ref), nil
}

// Blob opens a stored blob.
func (s *Store) Blob(digest string) (*os.File, error) {
	p, err := s.blobPath(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", digest, errdefs.ErrNotFound)
	}
	return f, err
}

func (s *Store) hasBlob(digest string, size int64) bool {
	p, err := s.blobPath(digest)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

// spool copies r into a new temporary file, returning its path, sha256
// digest and size; the caller owns (renames or removes) the file.
func (s *Store) spool(ctx context.Context, r io.Reader) (string, string, int64, error) {
	f, err := os.CreateTemp(s.path(tmpName), "blob-")
	if err != nil {
		return "", "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", 0, err
	}
	return f.Name(), "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// commitBlob moves a spooled file into blobs under its digest.
func (s *Store) commitBlob(tmp, digest string) error {
	p, err := s.blobPath(digest)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeBlob stores r, checking its digest against want when want is set.
func (s *Store) writeBlob(ctx context.Context, r io.Reader, want string) (string, int64, error) {
	tmp, digest, n, err := s.spool(ctx, r)
	if err != nil {
		return "", 0, fmt.Errorf("write blob: %w", err)
	}
	if want != "" && digest != want {
		os.Remove(tmp)
		return "", 0, fmt.Errorf("blob digest %s, expected %s: %w", digest, want, errdefs.ErrDataLoss)
	}
	if err := s.commitBlob(tmp, digest); err != nil {
		return "", 0, fmt.Errorf("write blob %s: %w", digest, err)
	}
	return digest, n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// chainIDs computes OCI chain IDs: the first is the first diff ID, each next
// one is sha256 of "<previous chain ID> <diff ID>".
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// ConfigFile reads an image's config, as stored.
func (s *Store) ConfigFile(img Image) (*v1.ConfigFile, error) {
	raw, err := s.readBlob(img.ID)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %v: %w", img.ID, err, errdefs.ErrDataLoss)
	}
	return cfg, nil
}
