package image

import (
	"bytes"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// importOne imports a random one-layer image as ref into s.
func importOne(t *testing.T, s *Store, ref string) Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("x:1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.MultiWrite(map[name.Tag]v1.Image{tag: img}, &buf); err != nil {
		t.Fatal(err)
	}
	got, err := s.Import(t.Context(), &buf, ref)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRefsReadOnce: a second read of an unchanged refs.json decodes
// nothing; a change by another Store (another process) is seen at once;
// what a read returns is the caller's to change.
func TestRefsReadOnce(t *testing.T) {
	// Not parallel: it counts the package's decodes.
	root := filepath.Join(t.TempDir(), "image")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	importOne(t, s, "one")
	get := func(ref string) (Image, int64) {
		t.Helper()
		n := refsDecodes.Load()
		img, err := s.Get(ctx, ref)
		if err != nil {
			t.Fatalf("Get %s: %v", ref, err)
		}
		return img, refsDecodes.Load() - n
	}
	// Just written: not kept (a replacement in the same tick could reuse
	// its identity), so read twice.
	if _, n := get("one"); n != 1 {
		t.Errorf("read of a file changed just now decoded %d times, want 1", n)
	}
	if _, n := get("one"); n != 1 {
		t.Errorf("second read of a file changed just now decoded %d times, want 1", n)
	}
	time.Sleep(refsMemoMargin + 50*time.Millisecond)
	img, n := get("one")
	if n != 1 {
		t.Errorf("first read of a settled file decoded %d times, want 1", n)
	}
	want := img.clone()
	img.Layers[0].Digest = "changed"
	img.DiffIDs[0] = "changed"
	img.Tags = append(img.Tags[:0], "changed")
	img2, n := get("one")
	if n != 0 {
		t.Errorf("second read of a settled file decoded %d times, want 0", n)
	}
	if !reflect.DeepEqual(img2, want) {
		t.Errorf("a caller's change of what Get returned reached the next Get:\n got %+v\nwant %+v", img2, want)
	}
	if _, ok := s.existing(want.ID, []string{want.Ref}); !ok {
		t.Errorf("existing(%s, %s) = false", want.ID, want.Ref)
	}

	// Another process tags it: the next read sees the new file.
	if err := other.Tag(ctx, "one", "two"); err != nil {
		t.Fatal(err)
	}
	if got, n := get("two"); n != 1 || got.ID != want.ID {
		t.Errorf("after another store's tag: Get two = %s (%d decodes), want %s read again", got.ID, n, want.ID)
	}
	if got, n := get("one"); n != 1 || !slices.Equal(got.Tags, []string{"docker.io/library/one:latest", "docker.io/library/two:latest"}) {
		t.Errorf("after another store's tag: tags %v (%d decodes)", got.Tags, n)
	}
}

// TestImageCloneSharesNothing fills every field of an Image, clones it,
// changes everything the clone reaches and checks the original: a field
// added later without a copy in clone fails here.
func TestImageCloneSharesNothing(t *testing.T) {
	t.Parallel()
	var orig Image
	fill(reflect.ValueOf(&orig).Elem(), "a")
	var want Image
	fill(reflect.ValueOf(&want).Elem(), "a")
	c := orig.clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone differs:\n got %+v\nwant %+v", c, orig)
	}
	fill(reflect.ValueOf(&c).Elem(), "b")
	if !reflect.DeepEqual(orig, want) {
		t.Errorf("changing the clone changed the original:\n got %+v\nwant %+v", orig, want)
	}
	r := refs{images: map[string]record{"id": {Image: orig, Manifest: "m"}}, tags: map[string]string{"t": "id"}}
	rc := r.clone()
	rc.tags["t"] = "other"
	rc.images["id"].Config.Labels["k"] = "b"
	if r.tags["t"] != "id" || r.images["id"].Config.Labels["k"] != "a" {
		t.Errorf("changing a refs clone changed the original: %+v", r)
	}
}

// fill sets every string v reaches to s (and every integer but durations
// to len(s)), giving each empty slice and map an element and each nil
// pointer a target; on a value filled before, it writes through the
// slices, maps and pointers already there.
func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		if v.Type() != reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(len(s)))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), s)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), s)
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fill(v.Index(i), s)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, s)
		v.SetMapIndex(reflect.ValueOf("k"), e)
	}
}
