package image_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/engine/image"
)

// testRegistry is go-containerregistry's in-memory registry on a loopback
// port, counting blob downloads; corrupt, when set, flips a byte of every
// blob it serves.
type testRegistry struct {
	host     string
	blobGets atomic.Int64
	corrupt  atomic.Bool
	// corruptOnly, when set, limits corrupt to the blob of that digest.
	corruptOnly atomic.Value
}

func newRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.blobGets.Add(1)
			only, _ := r.corruptOnly.Load().(string)
			if r.corrupt.Load() && (only == "" || strings.HasSuffix(req.URL.Path, only)) {
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, req)
				body := rec.Body.Bytes()
				if len(body) > 0 {
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
		}
		inner.ServeHTTP(w, req)
	})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *testRegistry) ref(s string) string { return r.host + "/" + s }

// upload puts img in the registry under ref with go-containerregistry
// itself, the reference client.
func upload(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

type events struct {
	mu  sync.Mutex
	evs []image.Event
}

func (e *events) add(ev image.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) count(p image.Phase) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Phase == p {
			n++
		}
	}
	return n
}

func TestPullKeepsRegistryDigests(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	src := randomImage(t, 3)
	digest := upload(t, reg.ref("app:1"), src)
	s, root := openStore(t)
	var ev events
	img, err := s.Pull(t.Context(), reg.ref("app:1"), image.WithProgress(ev.add))
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, img, src)
	if img.Digest != digest || img.Ref != reg.ref("app:1") {
		t.Errorf("pulled %s as %s, want digest %s", img.Ref, img.Digest, digest)
	}
	if want := []string{reg.ref("app") + "@" + digest}; !slices.Equal(img.RepoDigests, want) {
		t.Errorf("RepoDigests = %v, want %v", img.RepoDigests, want)
	}
	m, _ := src.Manifest()
	for i, l := range img.Layers {
		if l.Digest != m.Layers[i].Digest.String() || l.MediaType != string(m.Layers[i].MediaType) {
			t.Errorf("layer %d = %+v, want the registry's %s", i, l, m.Layers[i].Digest)
		}
	}
	// The stored manifest is the registry's, byte for byte.
	raw, _ := src.RawManifest()
	got, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("stored manifest differs from the registry's: %v", err)
	}
	if ev.count(image.Complete) != 3 || ev.count(image.Done) != 1 || ev.count(image.Waiting) != 3 {
		t.Errorf("events: %d complete, %d done, %d waiting; want 3, 1, 3", ev.count(image.Complete), ev.count(image.Done), ev.count(image.Waiting))
	}
	if byDigest, err := s.Get(t.Context(), reg.ref("app@"+digest)); err != nil || byDigest.ID != img.ID {
		t.Errorf("Get by digest = %v, %v", byDigest.ID, err)
	}

	// Again: nothing to fetch, every layer already exists.
	before := reg.blobGets.Load()
	var again events
	if _, err := s.Pull(t.Context(), reg.ref("app:1"), image.WithProgress(again.add)); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Load() - before; n > 1 { // the config may be read again
		t.Errorf("second pull fetched %d blobs", n)
	}
	if again.count(image.Exists) != 3 {
		t.Errorf("second pull: %d layers exist, want 3", again.count(image.Exists))
	}
}

func TestPullResumesAfterFailure(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	src := randomImage(t, 4)
	upload(t, reg.ref("app:1"), src)
	layers, _ := src.Layers()
	bad, _ := layers[3].Digest()
	s, root := openStore(t)
	// One layer arrives corrupted: the pull fails, nothing of it is visible,
	// but the layers that arrived whole are kept.
	reg.corruptOnly.Store(bad.String())
	reg.corrupt.Store(true)
	_, err := s.Pull(t.Context(), reg.ref("app:1"))
	if !errors.Is(err, errdefs.ErrDataLoss) && !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("pull of a corrupted blob: %v", err)
	}
	if list, _ := s.List(t.Context()); len(list) != 0 {
		t.Errorf("a failed pull left an image: %+v", list)
	}
	// Nothing partial is visible: what layers in flight got so far stays
	// apart, for the next pull to go on from.
	tmps, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range tmps {
		if !strings.HasPrefix(e.Name(), "partial-") {
			t.Errorf("a failed pull left the temporary file %s", e.Name())
		}
	}
	// Layers that arrived whole before the failure stayed (those in
	// flight were cancelled with it).
	kept := 0
	for _, l := range layers {
		d, _ := l.Digest()
		if _, err := os.Stat(filepath.Join(root, "blobs", "sha256", d.Hex)); err == nil {
			kept++
		}
	}
	// The bad layer is the fourth: it starts only once one of the first
	// three (three move at once) is stored, so at least one was kept.
	if kept == 0 {
		t.Fatal("no layer kept after the failed pull")
	}
	// Resumed: only the layers not kept (and the config, read again) move.
	reg.corrupt.Store(false)
	before := reg.blobGets.Load()
	var ev events
	if _, err := s.Pull(t.Context(), reg.ref("app:1"), image.WithProgress(ev.add)); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Load() - before; n > int64(4-kept+1) {
		t.Errorf("resumed pull fetched %d blobs; %d layers of 4 were kept", n, kept)
	}
	if ev.count(image.Exists) != kept || ev.count(image.Complete) != 4-kept {
		t.Errorf("resumed pull: %d layers existed, %d fetched; %d were kept", ev.count(image.Exists), ev.count(image.Complete), kept)
	}
}

// TestPullResumesAPartialBlob: a layer whose connection drops halfway is
// kept as far as it came, out of sight; the next pull asks the registry
// for the rest only (a Range request), and the blob is whole and verified.
// A registry that refuses the range gets asked for the whole blob.
func TestPullResumesAPartialBlob(t *testing.T) {
	t.Parallel()
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprint("range refused=", refuse), func(t *testing.T) {
			t.Parallel()
			src := randomImageOf(t, 256<<10, 1)
			layers, _ := src.Layers()
			digest, _ := layers[0].Digest()
			size, _ := layers[0].Size()
			var (
				cut    atomic.Bool
				served atomic.Int64
				mu     sync.Mutex
				ranges []string
			)
			reg := newRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, digest.String()) {
						h.ServeHTTP(w, req)
						return
					}
					mu.Lock()
					ranges = append(ranges, req.Header.Get("Range"))
					mu.Unlock()
					if refuse && req.Header.Get("Range") != "" {
						w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
						return
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.Code)
					body := rec.Body.Bytes()
					if cut.Swap(false) {
						w.Write(body[:len(body)/2])
						w.(http.Flusher).Flush()
						panic(http.ErrAbortHandler) // the connection drops
					}
					served.Add(int64(len(body)))
					w.Write(body)
				})
			})
			upload(t, reg.ref("app:1"), src)
			s, root := openStore(t)
			cut.Store(true)
			if _, err := s.Pull(t.Context(), reg.ref("app:1")); err == nil {
				t.Fatal("a pull whose connection dropped succeeded")
			}
			if list, _ := s.List(t.Context()); len(list) != 0 {
				t.Errorf("a failed pull left an image: %+v", list)
			}
			fi, err := os.Stat(filepath.Join(root, "tmp", "partial-"+digest.Hex))
			if err != nil || fi.Size() == 0 || fi.Size() >= size {
				t.Fatalf("partial blob after a dropped connection: %v (%d of %d bytes)", err, fi.Size(), size)
			}

			got, err := s.Pull(t.Context(), reg.ref("app:1"))
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, s, got, src)
			want, wantBytes := []string{"", fmt.Sprintf("bytes=%d-%d", fi.Size(), size-1)}, size-fi.Size()
			if refuse {
				want, wantBytes = append(want, ""), size
			}
			if fmt.Sprint(ranges) != fmt.Sprint(want) {
				t.Errorf("requests for the layer had Range %q, want %q", ranges, want)
			}
			if n := served.Load(); n != wantBytes {
				t.Errorf("the second pull moved %d bytes of the layer, want %d", n, wantBytes)
			}
			if n := countFiles(t, filepath.Join(root, "tmp")); n != 0 {
				t.Errorf("%d temporary files after the second pull", n)
			}
		})
	}
}

func TestPullCorruptBlob(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	upload(t, reg.ref("app:1"), randomImage(t, 1))
	s, root := openStore(t)
	reg.corrupt.Store(true)
	_, err := s.Pull(t.Context(), reg.ref("app:1"))
	if err == nil || !strings.Contains(err.Error(), reg.ref("app:1")) {
		t.Fatalf("error %v does not name the image", err)
	}
	if n := countFiles(t, filepath.Join(root, "blobs", "sha256")); n != 0 {
		t.Errorf("%d blobs stored from a corrupted pull", n)
	}
}

func TestPullMultiPlatform(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	here, other := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: here, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	tag, _ := name.ParseReference(reg.ref("multi:1"))
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	s, _ := openStore(t)
	img, err := s.Pull(t.Context(), reg.ref("multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, img, here)
	if img.RepoDigests[0] != reg.ref("multi")+"@"+idxDigest.String() {
		t.Errorf("RepoDigests = %v, want the index digest %s", img.RepoDigests, idxDigest)
	}
	o, err := s.Pull(t.Context(), reg.ref("multi:1"), image.WithPlatform("linux/s390x"))
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, o, other)
	_, err = s.Pull(t.Context(), reg.ref("multi:1"), image.WithPlatform("linux/riscv64"))
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "linux/riscv64") {
		t.Errorf("pull for a missing platform: %v, want NotFound naming it", err)
	}
}

func TestPullZstd(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	content := buildTar(t, ent{typ: '0', name: "hello.txt", body: "hi from zstd\n"})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	src, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, reg.ref("z:1"), src)
	s, _ := openStore(t)
	img, err := s.Pull(t.Context(), reg.ref("z:1"))
	if err != nil {
		t.Fatal(err)
	}
	if img.Layers[0].MediaType != string(types.OCILayerZStd) {
		t.Errorf("media type %s", img.Layers[0].MediaType)
	}
	rc, err := s.Layer(t.Context(), img, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("zstd layer reads back %d bytes, %v", len(got), err)
	}
}

func TestPullErrors(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	upload(t, reg.ref("app:1"), randomImage(t, 1))
	down := httptest.NewServer(http.NotFoundHandler())
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	s, _ := openStore(t)
	tests := []struct {
		ref  string
		want error
	}{
		{reg.ref("app:2"), errdefs.ErrNotFound},
		{reg.ref("nothere:1"), errdefs.ErrNotFound},
		{reg.ref("app@sha256:" + strings.Repeat("0", 64)), errdefs.ErrNotFound},
		{downHost + "/app:1", errdefs.ErrUnavailable},
		{"Bad/Name", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		if _, err := s.Pull(t.Context(), tt.ref); !errors.Is(err, tt.want) {
			t.Errorf("Pull(%s) = %v, want %v", tt.ref, err, tt.want)
		}
	}
	if list, _ := s.List(t.Context()); len(list) != 0 {
		t.Errorf("failed pulls left images: %+v", list)
	}
}

func TestPullAuth(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "berth" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	src := randomImage(t, 1)
	tag, _ := name.ParseReference(reg.ref("app:1"))
	if err := remote.Write(tag, src, remote.WithAuth(&authn.Basic{Username: "berth", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	s, _ := openStore(t)
	for _, kc := range []authn.Keychain{nil, staticKeychain{"berth", "wrong"}} {
		r := &image.Registries{Keychain: kc}
		if kc == nil {
			r.Keychain = staticKeychain{}
		}
		if _, err := s.Pull(t.Context(), reg.ref("app:1"), image.WithRegistries(r)); !errors.Is(err, errdefs.ErrPermissionDenied) {
			t.Errorf("pull with %v: %v, want PermissionDenied", kc, err)
		}
	}
	img, err := s.Pull(t.Context(), reg.ref("app:1"), image.WithRegistries(&image.Registries{Keychain: staticKeychain{"berth", "s3cret"}}))
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, img, src)
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	if k.user == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestPushRoundTrip(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	s, _ := openStore(t)
	ctx := t.Context()
	src := randomImage(t, 2)
	local, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": src})), "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "app:1", reg.ref("pushed:1")); err != nil {
		t.Fatal(err)
	}
	var ev events
	digest, err := s.Push(ctx, reg.ref("pushed:1"), image.WithProgress(ev.add))
	if err != nil {
		t.Fatal(err)
	}
	if digest != local.Digest {
		t.Errorf("pushed digest %s, stored manifest %s", digest, local.Digest)
	}
	if ev.count(image.Complete) != 2 || ev.count(image.Done) != 1 {
		t.Errorf("push events: %d complete, %d done", ev.count(image.Complete), ev.count(image.Done))
	}
	ref, _ := name.ParseReference(reg.ref("pushed:1"))
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != digest {
		t.Errorf("registry has %s, push said %s", desc.Digest, digest)
	}
	// Gone locally, pulled back: same image, same digest.
	other, _ := openStore(t)
	back, err := other.Pull(ctx, reg.ref("pushed:1"))
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != local.ID || back.Digest != local.Digest {
		t.Errorf("pulled back %s/%s, pushed %s/%s", back.ID, back.Digest, local.ID, local.Digest)
	}
	if _, err := s.Push(ctx, reg.ref("never-tagged:1")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("push of an unknown image: %v", err)
	}
}
