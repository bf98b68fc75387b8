package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const convertProject = `name: conv
services:
  web:
    image: web
    depends_on: [api]
    ports: ["8080:80"]
  api:
    image: api
    devices: ["/dev/fuse"]
  admin:
    image: admin
  debug:
    image: debug
    profiles: [debug]
`

func TestConvert(t *testing.T) {
	file := writeCompose(t, convertProject)
	out, stderr, err := runBerth(t, "-f", file, "convert")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Deployment\n", "name: web\n", "name: api\n", "name: admin\n", "type: LoadBalancer"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "name: debug\n") {
		t.Error("a service of an inactive profile is converted")
	}
	if !strings.Contains(stderr, `WARN service "api": devices: `) || strings.Contains(stderr, "not supported yet") {
		t.Errorf("stderr = %q, want the conversion's warnings and not up's", stderr)
	}

	// Service arguments select services and what they depend on; --profile
	// and the output flags are honoured.
	out, _, err = runBerth(t, "-f", file, "--profile", "debug", "convert", "--format", "json", "--publish", "nodeport", "-n", "team", "web", "debug")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "List"`, `"name": "debug"`, `"name": "api"`, `"type": "NodePort"`, `"namespace": "team"`} {
		if !strings.Contains(out, want) {
			t.Errorf("json output lacks %s", want)
		}
	}
	if strings.Contains(out, `"name": "admin"`) {
		t.Error("an unselected service is converted")
	}

	dir := filepath.Join(t.TempDir(), "k8s")
	if _, _, err := runBerth(t, "-f", file, "convert", "-o", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "web-deployment.yaml")); err != nil {
		t.Errorf("-o: %v", err)
	}
}

func TestConvertRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		args          []string
		want          string
	}{
		{"strict", convertProject, []string{"--strict"}, "--strict: 1 warnings (keys with no faithful equivalent"},
		{"does not load", "services:\n  web:\n    image: [x\n", nil, "compose.yaml: line"},
		{"no image", "services:\n  web:\n    command: [x]\n", nil, `service "web"`},
		{"bind mount", "services:\n  web:\n    image: w\n    volumes: ['./x:/x']\n", nil, `service "web": volumes: bind mount`},
		{"bad publish", convertProject, []string{"--publish", "clusterip"}, `--publish "clusterip"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeCompose(t, tc.content)
			dir := filepath.Join(t.TempDir(), "out")
			args := append([]string{"-f", file, "convert", "-o", dir}, tc.args...)
			_, _, err := runBerth(t, args...)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line containing %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed conversion wrote %s", dir)
			}
		})
	}
}
