package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-dev/berth/engine/image"
)

// The hostile corpus lives in testdata/hostile: layers (*.layer.tar, fed to
// Apply, relative to a target three levels deep so escapes land where the
// test can see them) and image archives (*.oci.tar.gz, fed to Load, then
// unpacked). go test -run TestHostileCorpus -corpus.update rewrites it.
var updateCorpus = flag.Bool("corpus.update", false, "rewrite testdata/hostile")

const corpusDir = "testdata/hostile"

// hostileLayers are tar streams that try to leave their target.
func hostileLayers(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"traversal.layer.tar":            buildTar(t, ent{typ: tar.TypeReg, name: "../../escaped", body: "x"}),
		"traversal-inside.layer.tar":     buildTar(t, ent{typ: tar.TypeReg, name: "usr/../../../escaped", body: "x"}),
		"absolute.layer.tar":             buildTar(t, ent{typ: tar.TypeReg, name: "/berth-hostile-absolute", body: "x"}),
		"symlink-absolute.layer.tar":     buildTar(t, ent{typ: tar.TypeSymlink, name: "lnk", link: "/"}, ent{typ: tar.TypeReg, name: "lnk/berth-hostile-symlink", body: "x"}),
		"symlink-chained.layer.tar":      buildTar(t, ent{typ: tar.TypeSymlink, name: "a", link: "b/.."}, ent{typ: tar.TypeSymlink, name: "b", link: "../.."}, ent{typ: tar.TypeReg, name: "a/escaped", body: "x"}),
		"symlink-relative-out.layer.tar": buildTar(t, ent{typ: tar.TypeSymlink, name: "up", link: "../../.."}, ent{typ: tar.TypeDir, name: "up/newdir/"}),
		"hardlink-out.layer.tar":         buildTar(t, ent{typ: tar.TypeLink, name: "pw", link: "/etc/passwd"}),
		"hardlink-dotdot.layer.tar":      buildTar(t, ent{typ: tar.TypeLink, name: "v", link: "../../victim"}),
		"device-char.layer.tar":          buildTar(t, ent{typ: tar.TypeChar, name: "mem", major: 1, body: ""}),
		"device-block.layer.tar":         buildTar(t, ent{typ: tar.TypeBlock, name: "sda", major: 8}),
	}
}

// ociArchive builds an OCI layout archive from named blobs and an index.
func ociArchive(t testing.TB, blobs map[string][]byte, index []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for d, b := range blobs {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// oneImage makes the blobs and index of a one-layer image.
func oneImage(t testing.TB, layer []byte, mediaType, diffID string, nLayers int) (map[string][]byte, []byte) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]},"config":{"Cmd":["true"]}}`,
		strings.TrimSuffix(strings.Repeat(`"`+diffID+`",`, nLayers), ",")))
	ld := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mediaType, digestOf(layer), len(layer))
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		digestOf(cfg), len(cfg), strings.TrimSuffix(strings.Repeat(ld+",", nLayers), ",")))
	idx := []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"annotations":{"io.containerd.image.name":"docker.io/library/hostile:1"}}]}`,
		digestOf(m), len(m)))
	return map[string][]byte{digestOf(cfg): cfg, digestOf(m): m, digestOf(layer): layer}, idx
}

// hostileImages are image archives whose blobs lie.
func hostileImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	good := buildTar(t, ent{typ: tar.TypeReg, name: "f", body: "content"})

	// A blob stored under a digest its content does not have.
	blobs, idx := oneImage(t, good, "application/vnd.oci.image.layer.v1.tar", digestOf(good), 1)
	blobs[digestOf(good)] = buildTar(t, ent{typ: tar.TypeReg, name: "f", body: "tampered"})
	out["wrong-digest.oci.tar.gz"] = ociArchive(t, blobs, idx)

	// A layer whose content is not the diff ID its config declares.
	blobs, idx = oneImage(t, good, "application/vnd.oci.image.layer.v1.tar", digestOf([]byte("something else")), 1)
	out["wrong-diffid.oci.tar.gz"] = ociArchive(t, blobs, idx)

	// A manifest of 100,000 layers: megabytes of JSON, refused before any
	// layer is read.
	blobs, idx = oneImage(t, good, "application/vnd.oci.image.layer.v1.tar", digestOf(good), 100000)
	out["manifest-bomb.oci.tar.gz"] = ociArchive(t, blobs, idx)

	// 1 GiB of zeros in a small zstd frame: refused as it expands past
	// the ratio any real compressor reaches.
	var zeros bytes.Buffer
	tw := tar.NewWriter(&zeros)
	const big = 1 << 30
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: big, Typeflag: tar.TypeReg})
	h := sha256.New()
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	mw := io.MultiWriter(h, zw)
	mw.Write(zeros.Bytes())
	chunk := make([]byte, 1<<20)
	for i := 0; i < big/len(chunk); i++ {
		mw.Write(chunk)
	}
	zeros.Reset()
	tw = tar.NewWriter(&zeros)
	tw.Close() // the end-of-archive blocks
	mw.Write(zeros.Bytes())
	zw.Close()
	blobs, idx = oneImage(t, z.Bytes(), "application/vnd.oci.image.layer.v1.tar+zstd", "sha256:"+hex.EncodeToString(h.Sum(nil)), 1)
	out["decompression-bomb.oci.tar.gz"] = ociArchive(t, blobs, idx)
	return out
}

func TestHostileCorpusIsCurrent(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -corpus.update to rewrite testdata/hostile")
	}
	os.MkdirAll(corpusDir, 0o755)
	for name, data := range hostileLayers(t) {
		os.WriteFile(filepath.Join(corpusDir, name), data, 0o644)
	}
	for name, data := range hostileImages(t) {
		os.WriteFile(filepath.Join(corpusDir, name), data, 0o644)
	}
}

// TestHostileCorpus: every hostile layer and image of testdata/hostile is
// refused with a clear error, and nothing is written outside the target.
func TestHostileCorpus(t *testing.T) {
	requireRoot(t)
	ents, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	passwd := fileHash(t, "/etc/passwd")
	n := 0
	for _, e := range ents {
		name := e.Name()
		data, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base, root := sandbox(t)
			before := snapshot(t, base, root)
			var err error
			switch {
			case strings.HasSuffix(name, ".layer.tar"):
				_, err = image.Apply(t.Context(), root, bytes.NewReader(data))
			case strings.HasSuffix(name, ".oci.tar.gz"):
				err = loadAndUnpack(t, data, root)
			default:
				t.Fatalf("unknown corpus file %s", name)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrDataLoss) {
				t.Errorf("error %v: want InvalidArgument or DataLoss", err)
			}
			t.Logf("refused: %v", err)
			if after := snapshot(t, base, root); after != before {
				t.Errorf("outside of the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			for _, p := range []string{"/berth-hostile-absolute", "/berth-hostile-symlink"} {
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s was created", p)
				}
			}
			if fileHash(t, "/etc/passwd") != passwd {
				t.Errorf("/etc/passwd changed")
			}
		})
	}
	if n < 14 {
		t.Errorf("corpus has %d files; regenerate it with -corpus.update", n)
	}
}

// loadAndUnpack loads an archive into a fresh store and unpacks its first
// image's layers into root, as a container start would.
func loadAndUnpack(t *testing.T, data []byte, root string) error {
	s, _ := openStore(t)
	imgs, err := s.Load(t.Context(), bytes.NewReader(data))
	if err != nil {
		return err
	}
	for i := range imgs[0].Layers {
		if err := s.Unpack(t.Context(), imgs[0], i, root); err != nil {
			return err
		}
	}
	return nil
}

// FuzzLoad feeds archives to Load: whatever it is given, Load stores a
// whole image or refuses with InvalidArgument, DataLoss or NotImplemented,
// and never panics.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"wrong-digest.oci.tar.gz", "wrong-diffid.oci.tar.gz", "decompression-bomb.oci.tar.gz"} {
		if b, err := os.ReadFile(filepath.Join(corpusDir, name)); err == nil {
			f.Add(b)
		}
	}
	good := buildTar(f, ent{typ: tar.TypeReg, name: "f", body: "content"})
	blobs, idx := oneImage(f, good, "application/vnd.oci.image.layer.v1.tar", digestOf(good), 1)
	f.Add(ociArchive(f, blobs, idx))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := image.Open(filepath.Join(t.TempDir(), "image"))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := s.Load(t.Context(), bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrDataLoss) && !errors.Is(err, errdefs.ErrNotImplemented) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("Load error %v has no input class", err)
			}
			return
		}
		for _, img := range imgs {
			if _, err := s.Get(t.Context(), img.ID); err != nil {
				t.Fatalf("loaded image %s not found: %v", img.ID, err)
			}
		}
	})
}
