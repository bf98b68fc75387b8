package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/engine/image"
)

// BenchmarkPull pulls a 5-layer image of about 100 MB (random content:
// compression gains nothing) from Debian's docker-registry on loopback:
// cold (empty store) and warm (blobs present), against skopeo copy to an
// OCI directory in the same run, which unpacks nothing. Then it unpacks the
// layers as a container start would and extracts the same layers with
// tar -xzf, in MB/s of unpacked bytes.
func BenchmarkPull(b *testing.B) {
	reg := startRegistry(b, registryOpts{})
	reg.configure(b)
	img, err := random.Image(20<<20, 5)
	if err != nil {
		b.Fatal(err)
	}
	ref := reg.host + "/bench/big:1"
	tag, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		b.Fatal(err)
	}
	var cold, warm, sk, unpack, untar []time.Duration
	var unpacked int64 // bytes of the layers' tars
	for b.Loop() {
		e := newEnv(b)
		t0 := time.Now()
		e.must("image", "pull", "-q", ref)
		cold = append(cold, time.Since(t0))
		t0 = time.Now()
		e.must("image", "pull", "-q", ref) // blobs present: the manifest only
		warm = append(warm, time.Since(t0))

		dir := filepath.Join(b.TempDir(), "oci")
		t0 = time.Now()
		if out, err := exec.Command("skopeo", "copy", "-q", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":1").CombinedOutput(); err != nil {
			b.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		sk = append(sk, time.Since(t0))

		// Unpack as a container's create does (decompress, check the diff
		// ID, apply safely), in process, against tar -xzf of the same blobs.
		st, err := image.Open(filepath.Join(e.root, "image"))
		if err != nil {
			b.Fatal(err)
		}
		pulled, err := st.Get(b.Context(), ref)
		if err != nil {
			b.Fatal(err)
		}
		out := b.TempDir()
		t0 = time.Now()
		for i := range pulled.Layers {
			d := filepath.Join(out, "berth", fmt.Sprint(i))
			os.MkdirAll(d, 0o755)
			if err := st.Unpack(b.Context(), pulled, i, d); err != nil {
				b.Fatal(err)
			}
		}
		unpack = append(unpack, time.Since(t0))
		t0 = time.Now()
		for i, l := range pulled.Layers {
			d := filepath.Join(out, "tar", fmt.Sprint(i))
			os.MkdirAll(d, 0o755)
			if o, err := exec.Command("tar", "-xzf", filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")), "-C", d).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v\n%s", err, o)
			}
		}
		untar = append(untar, time.Since(t0))
		os.RemoveAll(out)
		if unpacked == 0 {
			layers, _ := img.Layers()
			for _, l := range layers {
				rc, _ := l.Uncompressed()
				n, _ := io.Copy(io.Discard, rc)
				rc.Close()
				unpacked += n
			}
		}
	}
	mb := float64(unpacked) / (1 << 20)
	report := func(name string, ds []time.Duration) {
		b.ReportMetric(median(ds).Seconds(), name+"-s")
		b.ReportMetric(slices.Min(ds).Seconds(), name+"-min-s")
		b.ReportMetric(slices.Max(ds).Seconds(), name+"-max-s")
	}
	report("cold", cold)
	report("warm", warm)
	report("skopeo", sk)
	report("unpack", unpack)
	report("tar", untar)
	b.ReportMetric(mb/median(unpack).Seconds(), "unpack-MB/s")
	b.ReportMetric(mb/median(untar).Seconds(), "tar-MB/s")
	b.ReportMetric(mb, "MB")
	b.ReportMetric(0, "ns/op")
}
