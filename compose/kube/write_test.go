package kube

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"sigs.k8s.io/yaml"
)

const writeProject = `name: w
services:
  web:
    image: web
    ports: ["80:80"]
    secrets: [pw]
secrets:
  pw: {file: ./pw.txt}
`

func TestMarshal(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, writeProject, "pw.txt", "hunter2")
	y, err := Marshal(r.Objects, YAML)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(y), "---\n")
	if len(docs) != len(r.Objects) {
		t.Fatalf("%d YAML documents for %d objects", len(docs), len(r.Objects))
	}
	for i, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if m["kind"] != r.Objects[i].GetObjectKind().GroupVersionKind().Kind || m["apiVersion"] == nil {
			t.Errorf("document %d: kind %v apiVersion %v", i, m["kind"], m["apiVersion"])
		}
	}
	// Fields only a server fills in, and empty objects, are left out; an
	// emptyDir's {} stays.
	for _, bad := range []string{"status:", "creationTimestamp", "resources: {}", "strategy: {}"} {
		if strings.Contains(string(y), bad) {
			t.Errorf("output contains %q", bad)
		}
	}
	j, err := Marshal(r.Objects, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(j, &list); err != nil || list.Kind != "List" || len(list.Items) != len(r.Objects) {
		t.Errorf("JSON: %v, kind %q, %d items", err, list.Kind, len(list.Items))
	}
	if _, err := ParseFormat("toml"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("format toml: %v", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteDir(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, writeProject, "pw.txt", "hunter2")
	base := t.TempDir()
	out := filepath.Join(base, "k8s")
	if err := WriteDir(out, r.Objects, YAML); err != nil {
		t.Fatal(err)
	}
	got := dirNames(t, out)
	if !slices.Contains(got, "web-deployment.yaml") || !slices.Contains(got, "web-published-service.yaml") || len(got) != len(r.Objects)+1 {
		t.Errorf("files = %v", got)
	}
	if fi, err := os.Stat(filepath.Join(out, "pw-secret.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, mode %v; want 0600", err, fi.Mode())
	}

	// A second conversion replaces the whole directory: an object that is
	// gone leaves no file behind.
	fewer := mustConvert(t, "name: w\nservices:\n  web: {image: web}\n")
	if err := WriteDir(out, fewer.Objects, JSON); err != nil {
		t.Fatal(err)
	}
	got = dirNames(t, out)
	if slices.Contains(got, "web-deployment.yaml") || !slices.Contains(got, "web-deployment.json") || len(got) != len(fewer.Objects)+1 {
		t.Errorf("after replace: %v", got)
	}
	if n := len(dirNames(t, base)); n != 1 {
		t.Errorf("temporary directories left beside the output: %v", dirNames(t, base))
	}

	// A directory berth did not write is never touched.
	mine := filepath.Join(base, "mine")
	os.Mkdir(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("keep"), 0o644)
	err := WriteDir(mine, r.Objects, YAML)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("foreign directory: err = %v", err)
	}
	if got := dirNames(t, mine); !slices.Equal(got, []string{"notes.txt"}) {
		t.Errorf("foreign directory now holds %v", got)
	}
	if n := len(dirNames(t, base)); n != 2 {
		t.Errorf("temporary directories left beside the output: %v", dirNames(t, base))
	}
}
