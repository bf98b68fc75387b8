package e2e

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// benchDockerfile is the 10-step busybox build: RUN, COPY, ENV,
// WORKDIR and metadata steps.
const benchDockerfile = `FROM busybox
ENV APP=/app
WORKDIR /app
COPY a.txt ./
RUN echo one > /one
COPY b.txt ./
RUN echo two > /two && cat a.txt b.txt > both
ENV MODE=bench
RUN ls -l /app > /listing
CMD ["cat", "/app/both"]
`

// BenchmarkBuild measures a cold build (cache pruned first) and a fully
// cached rebuild, of the 10-step busybox Dockerfile and of
// examples/goapp (when debootstrap can make its golang image).
func BenchmarkBuild(b *testing.B) {
	b.Run("busybox-10-steps", func(b *testing.B) {
		e := newEnv(b)
		e.writeProject(map[string]string{
			"compose.yaml": "name: benchbuild\nservices:\n  app:\n    build: .\n",
			"Dockerfile":   benchDockerfile, "a.txt": "a\n", "b.txt": "b\n",
		})
		benchBuild(b, e)
	})
	b.Run("goapp", func(b *testing.B) {
		tars := buildServiceImages(b)
		e := newEnv(b)
		e.must("image", "import", tars["golang"], "golang")
		src, _ := filepath.Abs("../examples/goapp")
		copyTree(b, src, e.dir)
		benchBuild(b, e)
	})
}

// cachedPerCold is how many fully cached rebuilds follow each cold build:
// make bench's 5 iterations give 25 of them, enough for a median and a
// spread of a figure this small.
const cachedPerCold = 5

func benchBuild(b *testing.B, e *env) {
	// A project whose files were just written is not kept in the load
	// cache (they may be mid-write); one edited a while ago is.
	backdate(b, e.dir)
	var cold, cached []time.Duration
	for b.Loop() {
		e.must("builder", "prune", "-f")
		t0 := time.Now()
		e.must("build", "-q")
		cold = append(cold, time.Since(t0))
		for range cachedPerCold {
			t1 := time.Now()
			e.must("build", "-q")
			cached = append(cached, time.Since(t1))
		}
	}
	report(b, "cold", cold)
	report(b, "cached", cached)
	b.ReportMetric(0, "ns/op")
}

// report adds the median, min and max of ds as seconds.
func report(b *testing.B, name string, ds []time.Duration) {
	b.ReportMetric(median(ds).Seconds(), name+"-s")
	b.ReportMetric(slices.Min(ds).Seconds(), name+"-min-s")
	b.ReportMetric(slices.Max(ds).Seconds(), name+"-max-s")
}
