package image_test

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/engine/image"
	"github.com/containerd/errdefs"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want, familiar string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"foo/bar:1", "docker.io/foo/bar:1", "foo/bar:1"},
		{"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"},
		{"localhost/app:dev", "localhost/app:dev", "localhost/app:dev"},
		{"127.0.0.1:5000/x/y:z", "127.0.0.1:5000/x/y:z", "127.0.0.1:5000/x/y:z"},
		{"ghcr.io/org/repo/img:v1.2-rc", "ghcr.io/org/repo/img:v1.2-rc", "ghcr.io/org/repo/img:v1.2-rc"},
		{"busybox@" + dgst, "docker.io/library/busybox@" + dgst, "busybox@" + dgst},
		{"my_app-1.x", "docker.io/library/my_app-1.x:latest", "my_app-1.x:latest"},
	}
	for _, tt := range tests {
		got, err := image.Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		if f := image.FamiliarName(got); f != tt.familiar {
			t.Errorf("FamiliarName(%q) = %q, want %q", got, f, tt.familiar)
		}
	}
	for _, bad := range []string{"", " busybox", "Busybox", "busybox:", ":tag", "a//b", "a/", "-a", "a-", "busybox:bad tag", "busybox@sha256:short", "a..b"} {
		if _, err := image.Normalize(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Normalize(%q) error = %v, want InvalidArgument", bad, err)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"busybox", "docker.io/library/busybox:latest", "localhost:5000/a/b:c", "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "A", "a//b", "x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := image.Normalize(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Normalize(%q) error %v is not InvalidArgument", s, err)
			}
			return
		}
		if again, err := image.Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize not idempotent: %q -> %q -> %q, %v", s, n, again, err)
		}
		if back, err := image.Normalize(image.FamiliarName(n)); err != nil || back != n {
			t.Fatalf("FamiliarName(%q) = %q does not normalize back: %q, %v", n, image.FamiliarName(n), back, err)
		}
	})
}
