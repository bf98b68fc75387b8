package kube

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/compose/files"
)

var update = flag.Bool("update", false, "rewrite examples/*/kube.golden.yaml from the current output")

// TestGolden converts every example (every examples/*/compose.yaml, so a
// new example is covered as soon as it exists) and compares the objects,
// and the warnings as comments on top, with its kube.golden.yaml.
// go test ./compose/kube -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		dir, err := filepath.Abs(filepath.Dir(f))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := goldenOutput(t, dir)
			golden := filepath.Join(dir, "kube.golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./compose/kube -run TestGolden -update creates it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("conversion differs from %s (go test ./compose/kube -run TestGolden -update rewrites it):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// goldenOutput is what berth convert prints for the example in dir, with
// its warnings as YAML comments.
func goldenOutput(t *testing.T, dir string) []byte {
	t.Helper()
	p, _, err := files.Load(t.Context(), files.Options{ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}, WorkingDir: dir}, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	r, err := Convert(p, Options{})
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	out, err := Marshal(r.Objects, YAML)
	if err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	head.WriteString("# berth convert of examples/" + filepath.Base(dir) + "; warnings:\n")
	for _, w := range r.Warnings {
		head.WriteString("#   " + w.String() + "\n")
	}
	if len(r.Warnings) == 0 {
		head.WriteString("#   (none)\n")
	}
	// The checkout's path differs between machines.
	return []byte(strings.ReplaceAll(head.String()+string(out), dir, "${EXAMPLE_DIR}"))
}
