package compose

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/compose/files"
)

// TestConfigMatchesDockerCompose renders every case of the corpus
// (testdata/config/*/compose.yaml, real-world shapes) and compares it with
// what docker compose config prints for it: expected.yaml and expected.json,
// made by testdata/config/gen from the compose-go version Docker Compose v5
// builds with and the steps of its config command.
func TestConfigMatchesDockerCompose(t *testing.T) {
	cases, err := filepath.Glob("testdata/config/*/compose.yaml")
	if err != nil || len(cases) < 10 {
		t.Fatalf("corpus: %d cases, %v", len(cases), err)
	}
	for _, file := range cases {
		dir, err := filepath.Abs(filepath.Dir(file))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Setenv("PWD", dir)
			p, err := testLoad(t.Context(), files.Options{ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}})
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"yaml", "json"} {
				got, err := RenderConfig(p, format)
				if err != nil {
					t.Fatal(err)
				}
				got = bytes.ReplaceAll(got, []byte(dir), []byte("/project"))
				want, err := os.ReadFile(filepath.Join(dir, "expected."+format))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from docker compose's:\n--- berth\n%s\n--- docker compose\n%s", format, got, want)
				}
			}
		})
	}
}

// TestConfigLoadsBackToTheSameProject: config's output is itself a compose
// file for the same project ("$" escaped, paths absolute), so rendering it
// again gives the same text.
func TestConfigLoadsBackToTheSameProject(t *testing.T) {
	cases, _ := filepath.Glob("testdata/config/*/compose.yaml")
	for _, file := range cases {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			first, err := testLoad(t.Context(), files.Options{ConfigPaths: []string{file}})
			if err != nil {
				t.Fatal(err)
			}
			out, err := RenderConfig(first, "yaml")
			if err != nil {
				t.Fatal(err)
			}
			again := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(again, out, 0o644); err != nil {
				t.Fatal(err)
			}
			second, err := testLoad(t.Context(), files.Options{ConfigPaths: []string{again}})
			if err != nil {
				t.Fatalf("config output does not load: %v\n%s", err, out)
			}
			out2, err := RenderConfig(second, "yaml")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("rendered again differs:\n--- first\n%s\n--- again\n%s", out, out2)
			}
		})
	}
}

// TestServiceHashIsDockerComposes: the config hash label is the one docker
// compose computes for the same service (testdata/config/*/expected.hash
// lists the services whose model holds no absolute path of the checkout).
func TestServiceHashIsDockerComposes(t *testing.T) {
	cases, _ := filepath.Glob("testdata/config/*/compose.yaml")
	checked := 0
	for _, file := range cases {
		dir, _ := filepath.Abs(filepath.Dir(file))
		want, err := os.ReadFile(filepath.Join(dir, "expected.hash"))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("PWD", dir)
		p, err := testLoad(t.Context(), files.Options{ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Fields(strings.ReplaceAll(string(want), " ", "=")) {
			name, hash, _ := strings.Cut(line, "=")
			got, err := ServiceHash(p.Services[name])
			if err != nil {
				t.Fatal(err)
			}
			if got != hash {
				t.Errorf("%s: service %s: hash %s, docker compose's %s", filepath.Base(dir), name, got, hash)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d services checked", checked)
	}
}
