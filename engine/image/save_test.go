package image_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg := newRegistry(t, nil)
	a, b := randomImage(t, 2), randomImage(t, 1)
	upload(t, reg.ref("a:1"), a)
	s, _ := openStore(t)
	ia, err := s.Pull(ctx, reg.ref("a:1"))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"b:1": b})), "b:2")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "b:2", "example.com/b:3"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{reg.ref("a:1"), "b:2", "example.com/b:3"}); err != nil {
		t.Fatal(err)
	}

	// go-containerregistry reads it as a docker save archive...
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || !slices.Equal(m[1].RepoTags, []string{"b:2", "example.com/b:3"}) {
		t.Errorf("manifest.json = %+v", m)
	}

	// ...and Load gives the same images, digests and names back.
	other, _ := openStore(t)
	loaded, err := other.Load(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, i := range loaded {
		refs = append(refs, i.Ref)
	}
	slices.Sort(refs)
	if want := []string{reg.ref("a:1"), "docker.io/library/b:2", "example.com/b:3"}; !slices.Equal(refs, want) {
		t.Errorf("loaded %v, want %v", refs, want)
	}
	la, err := other.Get(ctx, reg.ref("a:1"))
	if err != nil {
		t.Fatal(err)
	}
	if la.ID != ia.ID || la.Digest != ia.Digest {
		t.Errorf("round trip changed a: %s/%s -> %s/%s", ia.ID, ia.Digest, la.ID, la.Digest)
	}
	checkImage(t, other, la, a)
	lb, err := other.Get(ctx, "example.com/b:3")
	if err != nil || lb.ID != ib.ID || lb.Digest != ib.Digest {
		t.Errorf("round trip changed b: %+v, %v", lb, err)
	}
}

// A store written before pull existed (refs.json version 1: one record per
// reference, layers uncompressed) keeps working, and the next change saves
// version 2.
func TestReadsVersion1Refs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, root := openStore(t)
	src := randomImage(t, 2)
	img, err := s.Import(ctx, bytes.NewReader(dockerSave(t, map[string]v1.Image{"a:1": src})), "old:1")
	if err != nil {
		t.Fatal(err)
	}
	v1rec := map[string]any{
		"Ref": img.Ref, "ID": img.ID, "Config": img.Config, "DiffIDs": img.DiffIDs,
		"ChainIDs": img.ChainIDs, "Created": img.Created, "Size": img.Size,
		"manifest": img.Digest, "manifestSize": 1,
	}
	data, _ := json.Marshal(map[string]any{"refs": map[string]any{img.Ref: v1rec}})
	if err := os.WriteFile(filepath.Join(root, "refs.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "old:1")
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, got, src)
	if err := s.Tag(ctx, "old:1", "new:1"); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int `json:"version"`
	}
	raw, _ := os.ReadFile(filepath.Join(root, "refs.json"))
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != 2 {
		t.Errorf("refs.json after a change: version %d, %v", f.Version, err)
	}
	if got, err := s.Get(ctx, "new:1"); err != nil || got.ID != img.ID {
		t.Errorf("Get(new:1) = %v, %v", got.ID, err)
	}
}
