package build_test

import (
	"testing"

	"github.com/berth-dev/berth/engine/build"
)

// BenchmarkCachedBuild is the builder's part of a fully cached rebuild of
// a 10-step Dockerfile, in process (no RUN: this builder has no runtime):
// what berth build spends beyond its process start and project load.
// Under the kernel lock: go test -run '^$' -bench CachedBuild ./engine/build/
func BenchmarkCachedBuild(b *testing.B) {
	f := newFixture(b)
	dir := writeContext(b, map[string]string{
		"Dockerfile": "FROM busybox\nENV APP=/app\nWORKDIR /app\nCOPY a.txt ./\nCOPY b.txt ./\nLABEL x=y\nENV MODE=bench\nCOPY . /ctx/\nUSER nobody\nCMD [\"cat\", \"/app/a.txt\"]\n",
		"a.txt":      "a\n", "b.txt": "b\n",
	})
	o := build.Options{Context: dir, Tags: []string{"bench"}}
	if _, err := f.b.Build(b.Context(), o); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.b.Build(b.Context(), o); err != nil {
			b.Fatal(err)
		}
	}
}
