package build_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/image"
)

// TestCacheFollowsEveryInstruction: for each instruction kind, a rebuild
// with nothing changed runs no step; a change of the instruction (or of
// what it reads) runs that step and every layer step after it again, and
// the image says what the changed Dockerfile or context says. (RUN's
// inputs are the e2e test TestBuildCacheMustFollowEveryInputOfRun's: RUN
// needs the runtime.)
func TestCacheFollowsEveryInstruction(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Two images that "base" names in turn.
	other, err := f.build(t, build.Options{Context: writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nLABEL base=other\n"}), Tags: []string{"other"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.images.Tag(ctx, "busybox", "base"); err != nil {
		t.Fatal(err)
	}
	archive := func(body string) string {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pkg/file", Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
		tw.Close()
		return b.String()
	}
	// config reads the built image's whole config (image.Config lacks
	// Shell and OnBuild).
	config := func(img image.Image) v1.Config {
		cfg, err := f.images.ConfigFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Config
	}
	// meta: a metadata instruction before a COPY, changed from before to
	// after; the COPY runs again (its parent changed, as with Docker's
	// builder) and the config shows the new value.
	type tcase struct {
		name   string
		files  map[string]string
		change func(t *testing.T, dir string)
		rerun  []string // layer steps that run again, FROM aside, sorted
		check  func(img image.Image, root func() string) string
	}
	meta := func(kind, before, after string, got func(v1.Config) any, want string) tcase {
		return tcase{
			name:   kind,
			files:  map[string]string{"Dockerfile": "FROM busybox\n" + before + "\nCOPY a /a\n", "a": "a"},
			change: func(t *testing.T, dir string) { edit(t, dir, before, after) },
			rerun:  []string{"[2/2] COPY a /a"},
			check: func(img image.Image, _ func() string) string {
				if g := fmt.Sprint(got(config(img))); g != want {
					return fmt.Sprintf("%s in the config = %s, want %s", kind, g, want)
				}
				return ""
			},
		}
	}
	file := func(path, want string) func(image.Image, func() string) string {
		return func(_ image.Image, root func() string) string {
			if got := readFile(t, filepath.Join(root(), path)); got != want {
				return fmt.Sprintf("/%s = %q, want %q", path, got, want)
			}
			return ""
		}
	}
	for _, tc := range []tcase{
		meta("ENV", "ENV E=1", "ENV E=2", func(c v1.Config) any { return c.Env[len(c.Env)-1] }, "E=2"),
		meta("ARG default", "ARG A=1\nENV FROM_ARG=$A", "ARG A=2\nENV FROM_ARG=$A", func(c v1.Config) any { return c.Env[len(c.Env)-1] }, "FROM_ARG=2"),
		meta("LABEL", "LABEL l=1", "LABEL l=2", func(c v1.Config) any { return c.Labels["l"] }, "2"),
		meta("EXPOSE", "EXPOSE 80", "EXPOSE 81", func(c v1.Config) any { return c.ExposedPorts }, "map[81/tcp:{}]"),
		meta("USER", "USER nobody", "USER 1000", func(c v1.Config) any { return c.User }, "1000"),
		meta("ENTRYPOINT", `ENTRYPOINT ["one"]`, `ENTRYPOINT ["two"]`, func(c v1.Config) any { return c.Entrypoint }, "[two]"),
		meta("CMD", `CMD ["one"]`, `CMD ["two"]`, func(c v1.Config) any { return c.Cmd }, "[two]"),
		meta("HEALTHCHECK", "HEALTHCHECK CMD one", "HEALTHCHECK CMD two", func(c v1.Config) any { return c.Healthcheck.Test }, "[CMD-SHELL two]"),
		meta("STOPSIGNAL", "STOPSIGNAL SIGINT", "STOPSIGNAL SIGUSR1", func(c v1.Config) any { return c.StopSignal }, "SIGUSR1"),
		meta("VOLUME", "VOLUME /one", "VOLUME /two", func(c v1.Config) any { return c.Volumes }, "map[/two:{}]"),
		meta("SHELL", `SHELL ["/bin/sh", "-c"]`, `SHELL ["/bin/sh", "-ec"]`, func(c v1.Config) any { return c.Shell }, "[/bin/sh -ec]"),
		meta("ONBUILD", "ONBUILD RUN one", "ONBUILD RUN two", func(c v1.Config) any { return c.OnBuild }, "[RUN two]"),
		{
			name:   "WORKDIR",
			files:  map[string]string{"Dockerfile": "FROM busybox\nWORKDIR /one\nCOPY a a\n", "a": "a"},
			change: func(t *testing.T, dir string) { edit(t, dir, "WORKDIR /one", "WORKDIR /two") },
			rerun:  []string{"[2/3] WORKDIR /two", "[3/3] COPY a a"},
			check:  file("two/a", "a"),
		},
		{
			name:  "FROM: the base image's tag moved",
			files: map[string]string{"Dockerfile": "FROM base\nCOPY a /a\n", "a": "a"},
			change: func(t *testing.T, _ string) {
				if err := f.images.Tag(ctx, other.ID, "base"); err != nil {
					t.Fatal(err)
				}
			},
			rerun: []string{"[2/2] COPY a /a"},
			check: func(img image.Image, _ func() string) string {
				if img.Config.Labels["base"] != "other" {
					return fmt.Sprintf("labels %v: not built on the new base", img.Config.Labels)
				}
				return ""
			},
		},
		{
			name:   "COPY: a file's content",
			files:  map[string]string{"Dockerfile": "FROM busybox\nCOPY a /a\nCOPY b /b\n", "a": "a", "b": "b"},
			change: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "a"), []byte("a2"), 0o644) },
			rerun:  []string{"[2/3] COPY a /a", "[3/3] COPY b /b"},
			check:  file("a", "a2"),
		},
		{
			name:   "COPY --chmod",
			files:  map[string]string{"Dockerfile": "FROM busybox\nCOPY --chmod=0644 a /a\n", "a": "a"},
			change: func(t *testing.T, dir string) { edit(t, dir, "--chmod=0644", "--chmod=0600") },
			rerun:  []string{"[2/2] COPY --chmod=0600 a /a"},
			check: func(_ image.Image, root func() string) string {
				if st, err := os.Stat(filepath.Join(root(), "a")); err != nil || st.Mode().Perm() != 0o600 {
					return fmt.Sprintf("/a: %v %v, want mode 0600", st, err)
				}
				return ""
			},
		},
		{
			name:   "COPY --chown",
			files:  map[string]string{"Dockerfile": "FROM busybox\nCOPY --chown=1 a /a\n", "a": "a"},
			change: func(t *testing.T, dir string) { edit(t, dir, "--chown=1 ", "--chown=2 ") },
			rerun:  []string{"[2/2] COPY --chown=2 a /a"},
			check: func(_ image.Image, root func() string) string {
				if st, err := os.Stat(filepath.Join(root(), "a")); err != nil {
					return err.Error()
				} else if uid, _ := ownerOf(st); uid != 2 {
					return fmt.Sprintf("/a belongs to %d, want 2", uid)
				}
				return ""
			},
		},
		{
			name:   "COPY --from a stage: the stage's input",
			files:  map[string]string{"Dockerfile": "FROM busybox AS src\nCOPY a /a\n\nFROM scratch\nCOPY --from=src /a /from-src\nCOPY b /b\n", "a": "a", "b": "b"},
			change: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "a"), []byte("a2"), 0o644) },
			rerun:  []string{"[2/3] COPY --from=src /a /from-src", "[3/3] COPY b /b", "[src 2/2] COPY a /a"},
			check:  file("from-src", "a2"),
		},
		{
			name:   "COPY --from a stage: the copying stage's own input",
			files:  map[string]string{"Dockerfile": "FROM busybox AS src\nCOPY a /a\n\nFROM scratch\nCOPY --from=src /a /from-src\nCOPY b /b\n", "a": "a", "b": "b"},
			change: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "b"), []byte("b2"), 0o644) },
			rerun:  []string{"[3/3] COPY b /b"},
			check:  file("b", "b2"),
		},
		{
			name:   "ADD: a local file's content",
			files:  map[string]string{"Dockerfile": "FROM busybox\nADD a /a\n", "a": "a"},
			change: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "a"), []byte("a2"), 0o644) },
			rerun:  []string{"[2/2] ADD a /a"},
			check:  file("a", "a2"),
		},
		{
			name:  "ADD: a local archive's content",
			files: map[string]string{"Dockerfile": "FROM busybox\nADD pkg.tar /opt/\n", "pkg.tar": archive("one")},
			change: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, "pkg.tar"), []byte(archive("two")), 0o644)
			},
			rerun: []string{"[2/2] ADD pkg.tar /opt/"},
			check: file("opt/pkg/file", "two"),
		},
		{
			name:   ".dockerignore: an ignored file changes",
			files:  map[string]string{"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", ".dockerignore": "skip\n", "skip": "1", "a": "a"},
			change: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "skip"), []byte("2"), 0o644) },
			check:  file("ctx/skip", "<missing>"),
		},
		{
			name:  ".dockerignore: the file itself",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", ".dockerignore": "skip\n", "skip": "1", "a": "a"},
			change: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("a\n"), 0o644)
			},
			rerun: []string{"[2/2] COPY . /ctx/"},
			check: func(img image.Image, root func() string) string {
				return file("ctx/skip", "1")(img, root) + file("ctx/a", "<missing>")(img, root)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A cache of its own: another case's steps may have the same
			// keys.
			cache, err := build.OpenCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			f.b.Cache = cache
			if err := f.images.Tag(ctx, "busybox", "base"); err != nil {
				t.Fatal(err)
			}
			dir := writeContext(t, tc.files)
			o := build.Options{Context: dir}
			first, err := f.build(t, o)
			if err != nil {
				t.Fatal(err)
			}
			again, err := f.build(t, o)
			if err != nil {
				t.Fatal(err)
			}
			if ran := layerSteps(f.steps(build.StepDone)); len(ran) > 0 || again.ID != first.ID {
				t.Fatalf("an unchanged rebuild ran %q (image %s, first %s)", ran, again.ID, first.ID)
			}
			tc.change(t, dir)
			img, err := f.build(t, o)
			if err != nil {
				t.Fatal(err)
			}
			if ran := layerSteps(f.steps(build.StepDone)); !slices.Equal(ran, tc.rerun) {
				t.Errorf("steps run = %q, want %q", ran, tc.rerun)
			}
			var rootDir string
			root := func() string {
				if rootDir == "" {
					rootDir = f.rootfs(t, img)
				}
				return rootDir
			}
			if msg := tc.check(img, root); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// layerSteps drops the FROM steps from a list of step names.
func layerSteps(names []string) []string {
	return slices.DeleteFunc(names, func(n string) bool { return strings.Contains(n, "] FROM ") })
}

// edit replaces old with new in dir's Dockerfile.
func edit(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "Dockerfile")
	b, err := os.ReadFile(p)
	if err != nil || !bytes.Contains(b, []byte(old)) {
		t.Fatalf("Dockerfile lacks %q (%v)", old, err)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}
