package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
)

// TestMergeImageConfig follows Docker's rules: an entrypoint given by the
// service drops the image's command; the service's environment overrides
// the image's key by key.
func TestMergeImageConfig(t *testing.T) {
	t.Parallel()
	img := image.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/img/bin", "A=1"},
		WorkingDir: "/app", User: "app", StopSignal: "SIGQUIT"}
	for _, tc := range []struct {
		name     string
		in       container.Config
		argv     string
		env      string
		cwd, usr string
	}{
		{"image defaults", container.Config{}, "/entry serve", "PATH=/img/bin A=1", "/app", "app"},
		{"command only", container.Config{Cmd: []string{"other"}}, "/entry other", "PATH=/img/bin A=1", "/app", "app"},
		{"entrypoint drops image cmd", container.Config{Entrypoint: []string{"/bin/sh"}}, "/bin/sh", "PATH=/img/bin A=1", "/app", "app"},
		{"both", container.Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "x"}}, "/bin/sh -c x", "PATH=/img/bin A=1", "/app", "app"},
		{"env override and add", container.Config{Env: []string{"A=2", "B=3"}, WorkingDir: "/w", User: "0"}, "/entry serve", "PATH=/img/bin A=2 B=3", "/w", "0"},
	} {
		got := mergeImageConfig(tc.in, img)
		argv := strings.Join(slices.Concat(got.Entrypoint, got.Cmd), " ")
		if argv != tc.argv || strings.Join(got.Env, " ") != tc.env || got.WorkingDir != tc.cwd || got.User != tc.usr || got.StopSignal != "SIGQUIT" {
			t.Errorf("%s: argv %q env %q cwd %q user %q", tc.name, argv, got.Env, got.WorkingDir, got.User)
		}
	}
	// Image labels sit under the container's own.
	got := mergeImageConfig(container.Config{Labels: map[string]string{"a": "mine", "c": "3"}},
		image.Config{Labels: map[string]string{"a": "image", "b": "2"}})
	if fmt.Sprint(got.Labels) != "map[a:mine b:2 c:3]" {
		t.Errorf("labels %v", got.Labels)
	}
	// Image volumes not mounted otherwise become anonymous volumes.
	got = mergeImageConfig(container.Config{Mounts: []container.Mount{{Type: "bind", Source: "/srv", Target: "/data/"}}},
		image.Config{Volumes: []string{"/data", "/logs"}})
	if len(got.Mounts) != 2 || got.Mounts[1].Type != "volume" || got.Mounts[1].Target != "/logs" || got.Mounts[1].Source != "" {
		t.Errorf("mounts %+v, want the bind and an anonymous volume at /logs", got.Mounts)
	}
	// The image's EXPOSE joins the container's own, once each, sorted.
	got = mergeImageConfig(container.Config{Expose: []string{"80/tcp", "9000/udp"}},
		image.Config{ExposedPorts: []string{"443/tcp", "80/tcp"}})
	if fmt.Sprint(got.Expose) != "[443/tcp 80/tcp 9000/udp]" {
		t.Errorf("expose %v", got.Expose)
	}
	// An image without PATH still gets Docker's default one.
	got = mergeImageConfig(container.Config{Cmd: []string{"x"}}, image.Config{})
	if !hasEnv(got.Env, "PATH") {
		t.Errorf("no default PATH: %v", got.Env)
	}
}

func TestInstanceNamesDoNotCollide(t *testing.T) {
	t.Parallel()
	if Instance(DefaultRoot) != "berth" {
		t.Errorf("default root instance %q", Instance(DefaultRoot))
	}
	a, b := Instance("/tmp/a/root"), Instance("/tmp/b/root")
	if a == b || !strings.HasPrefix(a, "berth-") || len(a) != len("berth-")+8 {
		t.Errorf("instances %q %q", a, b)
	}
}
