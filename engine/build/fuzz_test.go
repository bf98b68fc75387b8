package build

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

// FuzzParse: any Dockerfile text either parses into stages or is an
// InvalidArgument naming the file; never a panic. The same for the
// .dockerignore rules of a context.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz-seeds/*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(string(b), "*.log\n!keep.log\n")
		}
	}
	f.Add("FROM busybox\nRUN <<EOF\necho hi\nEOF\n", "**/node_modules\n")
	f.Add("ARG X=1\nFROM ${X} AS a\nCOPY --from=a --chown=1:1 . /\n", "!\n")
	f.Fuzz(func(t *testing.T, dockerfile, ignore string) {
		df, err := Parse("Dockerfile", []byte(dockerfile))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of another class: %v", err)
			}
		} else if len(df.Stages) == 0 {
			t.Fatal("parsed with no stage")
		} else {
			_, _ = df.Target("")
			for i := range df.Stages {
				_, _ = df.stageIndex(df.Stages[i].Name)
			}
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := openContext(dir, "")
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ignore file: error of another class: %v", err)
			}
			return
		}
		tr.excluded("a/b.log")
	})
}
