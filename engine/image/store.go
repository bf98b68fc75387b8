package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// reference names which image. Layers are stored uncompressed, so a layer's
// blob digest is its diff ID and unpacking never decompresses.
type Store struct {
	root string
}

// Config is the part of an image's run configuration a container needs.
type Config struct {
	Env, Cmd, Entrypoint []string
	WorkingDir, User     string
	StopSignal           string
	Labels               map[string]string
	ExposedPorts         []string // "80/tcp", sorted
}

// Image describes one stored image.
type Image struct {
	Ref      string // normalized, e.g. "docker.io/library/busybox:latest"
	ID       string // "sha256:<config digest>"
	Config   Config
	DiffIDs  []string // bottom to top
	ChainIDs []string // bottom to top, OCI chain IDs
	Created  time.Time
	Size     int64 // uncompressed layer bytes
}

// record is one entry of refs.json.
type record struct {
	Image
	Manifest     string `json:"manifest"`
	ManifestSize int64  `json:"manifestSize"`
}

type refsFile struct {
	Refs map[string]record `json:"refs"`
}

const (
	refsName  = "refs.json"
	lockName  = "refs.lock"
	tmpName   = "tmp"
	blobsName = "blobs/sha256"

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
		if err := s.writeIndex(map[string]record{}); err != nil {
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

// lock guards read-modify-write of refs.json and garbage collection across
// processes. Readers need no lock: refs.json is replaced atomically.
func (s *Store) lock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, s.path(lockName))
}

func (s *Store) readRefs() (map[string]record, error) {
	var f refsFile
	if err := atomicfile.ReadJSON(s.path(refsName), &f); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]record{}, nil
		}
		return nil, fmt.Errorf("read %s: %w", s.path(refsName), err)
	}
	if f.Refs == nil {
		f.Refs = map[string]record{}
	}
	return f.Refs, nil
}

// writeRefs saves refs.json and mirrors it into index.json so the directory
// stays a valid OCI layout other tools can read.
func (s *Store) writeRefs(refs map[string]record) error {
	if err := atomicfile.WriteJSON(s.path(refsName), refsFile{Refs: refs}, 0o600); err != nil {
		return fmt.Errorf("write refs: %w", err)
	}
	return s.writeIndex(refs)
}

func (s *Store) writeIndex(refs map[string]record) error {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		rec := refs[ref]
		h, err := v1.NewHash(rec.Manifest)
		if err != nil {
			return fmt.Errorf("ref %q: manifest digest: %w", ref, err)
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:   types.OCIManifestSchema1,
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

// Get returns the image stored under ref, which may also be an image ID
// ("sha256:<hex>") or a unique prefix of one.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) {
	refs, err := s.readRefs()
	if err != nil {
		return Image{}, err
	}
	keys, err := resolve(refs, ref)
	if err != nil {
		return Image{}, err
	}
	return refs[keys[0]].Image, nil
}

// resolve returns the refs that ref names, sorted: one for a reference,
// every ref of the image for an ID.
func resolve(refs map[string]record, ref string) ([]string, error) {
	if n, err := Normalize(ref); err == nil {
		if _, ok := refs[n]; ok {
			return []string{n}, nil
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if !isHex(prefix) {
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	var keys []string
	id := ""
	for k, rec := range refs {
		if !strings.HasPrefix(strings.TrimPrefix(rec.ID, "sha256:"), prefix) {
			continue
		}
		if id != "" && rec.ID != id {
			return nil, fmt.Errorf("image %q: ambiguous id prefix: %w", ref, errdefs.ErrInvalidArgument)
		}
		id = rec.ID
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	slices.Sort(keys)
	return keys, nil
}

// List returns every stored image sorted by Ref.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(refs))
	for _, k := range slices.Sorted(maps.Keys(refs)) {
		out = append(out, refs[k].Image)
	}
	return out, nil
}

// Remove deletes ref (or every ref of an image ID) and garbage-collects the
// blobs no remaining ref uses.
func (s *Store) Remove(ctx context.Context, ref string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	defer l.Unlock()
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	keys, err := resolve(refs, ref)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(refs, k)
	}
	if err := s.writeRefs(refs); err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	return s.gc(refs)
}

// gc removes blobs and temporary files no ref needs. Callers hold the lock,
// and Import holds it while it writes blobs, so nothing in flight is lost.
func (s *Store) gc(refs map[string]record) error {
	keep := map[string]bool{}
	for _, rec := range refs {
		keep[rec.Manifest] = true
		keep[rec.ID] = true
		for _, d := range rec.DiffIDs {
			keep[d] = true
		}
	}
	ents, err := os.ReadDir(s.path(blobsName))
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		if !keep["sha256:"+e.Name()] {
			if err := os.RemoveAll(s.path(blobsName, e.Name())); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
	}
	tmps, err := os.ReadDir(s.path(tmpName))
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, e := range tmps {
		if err := os.RemoveAll(s.path(tmpName, e.Name())); err != nil {
			return fmt.Errorf("gc: %w", err)
		}
	}
	return atomicfile.SyncDir(s.path(blobsName))
}

// Layer opens the uncompressed tar stream of layer i (0 is the bottom).
func (s *Store) Layer(ctx context.Context, img Image, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(img.DiffIDs) {
		return nil, fmt.Errorf("image %q: layer %d of %d: %w", img.Ref, i, len(img.DiffIDs), errdefs.ErrInvalidArgument)
	}
	p, err := s.blobPath(img.DiffIDs[i])
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %q: layer %s: %w", img.Ref, img.DiffIDs[i], errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: layer %s: %w", img.Ref, img.DiffIDs[i], err)
	}
	return f, nil
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
		return "", 0, fmt.Errorf("blob digest %s, expected %s: %w", digest, want, errdefs.ErrInvalidArgument)
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
