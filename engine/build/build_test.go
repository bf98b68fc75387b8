package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/busybox"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds mount overlayfs")
	}
}

// fixture is a builder on stores of its own, with busybox imported.
type fixture struct {
	b      *build.Builder
	images *image.Store
	snaps  *snapshot.Store
	events []build.Event
	mu     sync.Mutex
}

var busyboxTar = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "berth-build-test-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "busybox.tar")
	return p, busybox.WriteTar(p)
})

func newFixture(t testing.TB) *fixture {
	t.Helper()
	requireRoot(t)
	root := t.TempDir()
	images, err := image.Open(filepath.Join(root, "image"))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.Open(filepath.Join(root, "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := build.OpenCache(filepath.Join(root, "build", "cache"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := images.Import(t.Context(), f, "busybox"); err != nil {
		t.Fatal(err)
	}
	return &fixture{
		images: images, snaps: snaps,
		b: &build.Builder{
			Images: images, Snapshots: snaps, Cache: cache,
			RunDir: filepath.Join(root, "run"), MountsDir: filepath.Join(root, "build", "mounts"),
		},
	}
}

// context writes files (name -> content; "->target" makes a symlink) into
// a new directory.
func writeContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (f *fixture) build(t *testing.T, o build.Options) (image.Image, error) {
	t.Helper()
	f.mu.Lock()
	f.events = nil
	f.mu.Unlock()
	o.Progress = func(e build.Event) {
		f.mu.Lock()
		f.events = append(f.events, e)
		f.mu.Unlock()
	}
	return f.b.Build(t.Context(), o)
}

// steps lists the steps of the last build that reached state s, by name.
func (f *fixture) steps(s build.StepState) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		if e.State == s {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// rootfs mounts img read-only... as a throwaway writable layer, and
// returns its root.
func (f *fixture) rootfs(t *testing.T, img image.Image) string {
	t.Helper()
	for i, c := range img.ChainIDs {
		if err := f.snaps.EnsureLayer(t.Context(), c, func(dir string) error { return f.images.Unpack(t.Context(), img, i, dir) }); err != nil {
			t.Fatal(err)
		}
	}
	key := fmt.Sprintf("view-%x", sha256.Sum256([]byte(t.Name()+img.ID)))[:40]
	ms, err := f.snaps.Prepare(t.Context(), key, img.ChainIDs)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := snapshot.MountAll(ms, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		snapshot.Unmount(dir)
		f.snaps.Remove(t.Context(), key)
	})
	return dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<missing>"
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"FROM busybox\nRUNN x\n", "Dockerfile:2: unknown instruction: RUNN"},
		{"FROM busybox\nCOPY\n", "Dockerfile:2: COPY requires at least two arguments"},
		{"FROM a AS x\nFROM b AS x\n", `Dockerfile:2: stage name "x" is also used on line 1`},
		{"# only a comment\n", "Dockerfile"},
		{"ARG X=1\n", "Dockerfile: no FROM instruction"},
		{"FROM a\nHEALTHCHECK --interval=x CMD true\n", "Dockerfile:2: "},
		{"RUN true\n", "Dockerfile:1: "},
	} {
		_, err := build.Parse("Dockerfile", []byte(tc.src))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v, want %q... (invalid argument)", tc.src, err, tc.want)
		}
	}
}

// TestImageConfig: every metadata instruction ends up in the image's
// config as the Dockerfile says, ARGs and ENV expanded.
func TestImageConfig(t *testing.T) {
	f := newFixture(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `
ARG BASE=busybox
FROM --platform=$BUILDPLATFORM ${BASE}
ARG VERSION=1.0
ARG FROM_BUILD
ENV APP_VERSION=$VERSION PATH=/app/bin:$PATH
LABEL org.example.version="${APP_VERSION}" other=x
MAINTAINER someone
WORKDIR /app
WORKDIR sub
USER nobody
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/app"]
CMD run --port ${FROM_BUILD}
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD wget -q localhost
ONBUILD RUN echo child
`})
	img, err := f.build(t, build.Options{Context: dir, Tags: []string{"conf:1"}, Args: map[string]string{"FROM_BUILD": "8080"},
		Labels: map[string]string{"com.docker.compose.project": "p"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.images.ConfigFile(img)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Env", c.Env, []string{"PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_VERSION=1.0"})
	check("Labels", c.Labels, map[string]string{"org.example.version": "1.0", "other": "x", "com.docker.compose.project": "p"})
	check("WorkingDir", c.WorkingDir, "/app/sub")
	check("User", c.User, "nobody")
	check("ExposedPorts", c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
	check("Volumes", c.Volumes, map[string]struct{}{"/data": {}, "/cache": {}})
	check("StopSignal", c.StopSignal, "SIGINT")
	check("Shell", c.Shell, []string{"/bin/sh", "-ec"})
	check("Entrypoint", c.Entrypoint, []string{"/bin/app"})
	check("Cmd", c.Cmd, []string{"/bin/sh", "-ec", "run --port ${FROM_BUILD}"})
	check("Healthcheck", c.Healthcheck, &v1.HealthConfig{Test: []string{"CMD-SHELL", "wget -q localhost"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Second, Retries: 4})
	check("OnBuild", c.OnBuild, []string{"RUN echo child"})
	check("Author", cfg.Author, "someone")
	// Two WORKDIR layers (the directories are new) on top of busybox's.
	if len(img.Layers) != 3 || len(cfg.History) < 14 {
		t.Errorf("%d layers, %d history entries: %+v", len(img.Layers), len(cfg.History), cfg.History)
	}
	if img.Config.User != "nobody" || img.Ref != "docker.io/library/conf:1" {
		t.Errorf("stored image = %+v", img)
	}
	root := f.rootfs(t, img)
	if st, err := os.Stat(filepath.Join(root, "app/sub")); err != nil || !st.IsDir() {
		t.Errorf("WORKDIR did not create /app/sub: %v", err)
	}
}

// TestCopy checks COPY and its rules: directory contents, wildcards,
// .dockerignore with exceptions, symlinks kept as links and never
// followed out of the context, --chown, --chmod, heredocs, relative
// destinations.
func TestCopy(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o644)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
WORKDIR /app
COPY src/ ./src/
COPY *.txt notes/
COPY --chown=nobody:nogroup --chmod=0640 owned /owned
COPY --chown=1234 owned /owned-num
COPY abs /abs
COPY linkdir /linkdir
ENV NAME=world
COPY <<EOF /etc/motd
hello $NAME
EOF
COPY <<'EOF' /etc/raw
hello $NAME
EOF
COPY single.txt /renamed
COPY --link two.txt /linked
`,
		".dockerignore":   "**/*.log\nsrc/skip\n!src/skip/keep\nDockerfile\n",
		"top.log":         "noise",
		"src/a.go":        "package a",
		"src/deep/b.go":   "package b",
		"src/debug.log":   "noise",
		"src/skip/x":      "ignored",
		"src/skip/keep":   "kept",
		"src/link":        "->a.go",
		"single.txt":      "one",
		"two.txt":         "two",
		"owned":           "mine",
		"escape":          "->" + filepath.Join(outside, "secret"),
		"etc/passwd":      "context passwd",
		"abs":             "->/etc/passwd",
		"linkdir/outside": "->../../../../../etc",
	})
	img, err := f.build(t, build.Options{Context: dir, Tags: []string{"copy"}})
	if err != nil {
		t.Fatal(err)
	}
	root := f.rootfs(t, img)
	for p, want := range map[string]string{
		"app/src/a.go":         "package a",
		"app/src/deep/b.go":    "package b",
		"app/src/debug.log":    "<missing>",
		"app/src/skip/x":       "<missing>",
		"app/src/skip/keep":    "kept",
		"app/notes/two.txt":    "two",
		"app/notes/single.txt": "one",
		"owned":                "mine",
		"renamed":              "one",
		"linked":               "two",
		"etc/motd":             "hello world\n",
		"etc/raw":              "hello $NAME\n",
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "app/src/link")); err != nil || l != "a.go" {
		t.Errorf("symlink in a copied directory: %q, %v; want it kept as a link", l, err)
	}
	// A symlink named as a source resolves inside the context: its
	// absolute target is the context's file, not the host's.
	if got := readFile(t, filepath.Join(root, "abs")); got != "context passwd" {
		t.Errorf("/abs = %q: COPY followed a symlink out of the context", got)
	}
	if l, err := os.Readlink(filepath.Join(root, "linkdir/outside")); err != nil || l != "../../../../../etc" {
		t.Errorf("linkdir/outside = %q, %v", l, err)
	}
	st, err := os.Stat(filepath.Join(root, "owned"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := ownerOf(st); uid != 65534 || gid != 65534 || st.Mode().Perm() != 0o640 {
		t.Errorf("/owned: %d:%d %v, want 65534:65534 -rw-r-----", uid, gid, st.Mode())
	}
	if st, err := os.Stat(filepath.Join(root, "owned-num")); err != nil {
		t.Error(err)
	} else if uid, gid := ownerOf(st); uid != 1234 || gid != 1234 {
		t.Errorf("/owned-num: %d:%d, want 1234:1234", uid, gid)
	}
	if st, err := os.Stat(filepath.Join(root, "app/src/a.go")); err != nil {
		t.Error(err)
	} else if uid, _ := ownerOf(st); uid != 0 {
		t.Errorf("context files belong to root in the image; a.go has uid %d", uid)
	}
}

// TestBadInput: each mistake is one error naming the Dockerfile and its
// line, and tags nothing.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	secretDir := t.TempDir()
	os.WriteFile(filepath.Join(secretDir, "secret"), []byte("host secret"), 0o644)
	outside := filepath.Base(t.TempDir())
	for _, tc := range []struct {
		name, dockerfile, target string
		want                     string
		class                    error
	}{
		{"wildcard matching nothing", "FROM busybox\nCOPY *.log /x/\n", "", "Dockerfile:2: COPY *.log: no file in the build context matches", errdefs.ErrNotFound},
		{"missing file", "FROM busybox\nCOPY nope /x\n", "", "Dockerfile:2: COPY nope: not found in the build context", errdefs.ErrNotFound},
		{"symlink out of the context", "FROM busybox\nCOPY escape /x\n", "", "Dockerfile:2: COPY escape: not found in the build context", errdefs.ErrNotFound},
		{"outside the context", "FROM busybox\nCOPY ../" + outside + " /x\n", "", "Dockerfile:2: COPY ../" + outside + ": outside the build context", errdefs.ErrInvalidArgument},
		{"unknown stage", "FROM busybox\nCOPY --from=builder /x /x\n", "", "Dockerfile:2: COPY --from=builder: no stage, context or image of that name", errdefs.ErrNotFound},
		{"unknown target", "FROM busybox AS a\n", "b", `target stage "b" could not be found`, errdefs.ErrNotFound},
		{"unknown base", "FROM nothere\n", "", `Dockerfile:1: FROM nothere: image "nothere" not found`, errdefs.ErrNotFound},
		{"unknown instruction", "FROM busybox\nFOO bar\n", "", "Dockerfile:2: unknown instruction: FOO", errdefs.ErrInvalidArgument},
		{"several sources", "FROM busybox\nCOPY a b /dst\n", "", "Dockerfile:2: COPY with more than one source file", errdefs.ErrInvalidArgument},
		{"bad chmod", "FROM busybox\nCOPY a /a\nCOPY --chmod=abc a /b\n", "", "Dockerfile:3: COPY --chmod=abc", errdefs.ErrInvalidArgument},
		{"bad platform", "FROM --platform=linux/s390x busybox\n", "", "Dockerfile:1: platform", errdefs.ErrNotImplemented},
		{"ssh mount", "FROM busybox\nRUN --mount=type=ssh true\n", "", "Dockerfile:2: RUN --mount: type=ssh is not supported", errdefs.ErrNotImplemented},
		{"insecure", "FROM busybox\nRUN --security=insecure true\n", "", "Dockerfile:2: RUN --security=insecure is not supported", errdefs.ErrNotImplemented},
		{"syntax error", "FROM busybox\nENV\n", "", "Dockerfile:2: ENV", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile, "a": "a", "b": "b", "escape": "->" + filepath.Join(secretDir, "secret")})
			tag := "bad-" + strings.ReplaceAll(tc.name, " ", "-")
			_, err := f.build(t, build.Options{Name: "web", Context: dir, Target: tc.target, Tags: []string{tag}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.class) {
				t.Fatalf("error = %v, want %q (%v)", err, tc.want, tc.class)
			}
			if !strings.HasPrefix(err.Error(), `service "web": `) {
				t.Errorf("error does not name the service: %v", err)
			}
			if _, err := f.images.Get(t.Context(), tag); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("a failed build tagged %s: %v", tag, err)
			}
		})
	}
}

func ownerOf(st os.FileInfo) (int, int) {
	s := st.Sys().(*syscall.Stat_t)
	return int(s.Uid), int(s.Gid)
}

// TestCacheInvalidation builds, changes one input, and builds again: the
// steps before the change come from the cache, the changed one and every
// one after it run again; an unchanged rebuild gives the same image.
func TestCacheInvalidation(t *testing.T) {
	f := newFixture(t)
	files := map[string]string{
		"Dockerfile": "FROM busybox\nARG MODE=a\nCOPY a /a\nWORKDIR /w\nENV E=1\nCOPY b /b\nCMD [\"x\"]\n",
		"a":          "a", "b": "b", "unused": "u",
	}
	dir := writeContext(t, files)
	o := build.Options{Context: dir, Tags: []string{"cache"}}
	first, err := f.build(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.steps(build.StepCached); len(got) != 0 {
		t.Errorf("first build used the cache: %q", got)
	}
	// A fully cached rebuild claims no run directory (mounts and writes
	// nothing there): one that cannot be made does not stop it.
	runDir := f.b.RunDir
	f.b.RunDir = filepath.Join(dir, "a", "run")
	again, err := f.build(t, o)
	f.b.RunDir = runDir
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Errorf("cached rebuild made image %s, first build %s", again.ID, first.ID)
	}
	want := []string{"[2/4] COPY a /a", "[3/4] WORKDIR /w", "[4/4] COPY b /b"}
	if got := f.steps(build.StepCached); !slices.Equal(got, want) {
		t.Errorf("cached steps = %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name   string
		change func()
		opts   func(*build.Options)
		rerun  []string // steps that must run (not come from the cache)
	}{
		{"unused file", func() { os.WriteFile(filepath.Join(dir, "unused"), []byte("v2"), 0o644) }, nil, nil},
		{"file of the last COPY", func() { os.WriteFile(filepath.Join(dir, "b"), []byte("b2"), 0o644) }, nil, []string{"[4/4] COPY b /b"}},
		{"file mode", func() { os.Chmod(filepath.Join(dir, "b"), 0o600) }, nil, []string{"[4/4] COPY b /b"}},
		{"file of the first COPY", func() { os.WriteFile(filepath.Join(dir, "a"), []byte("a2"), 0o644) }, nil, []string{"[2/4] COPY a /a", "[3/4] WORKDIR /w", "[4/4] COPY b /b"}},
		{"build arg", nil, func(o *build.Options) { o.Args = map[string]string{"MODE": "b"} }, []string{"[2/4] COPY a /a", "[3/4] WORKDIR /w", "[4/4] COPY b /b"}},
		{"an ENV", func() {
			os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nARG MODE=a\nCOPY a /a\nWORKDIR /w\nENV E=2\nCOPY b /b\nCMD [\"x\"]\n"), 0o644)
		}, func(o *build.Options) { o.Args = map[string]string{"MODE": "b"} }, []string{"[4/4] COPY b /b"}},
		{"no cache", nil, func(o *build.Options) { o.NoCache = true; o.Args = map[string]string{"MODE": "b"} }, []string{"[2/4] COPY a /a", "[3/4] WORKDIR /w", "[4/4] COPY b /b"}},
	} {
		if tc.change != nil {
			tc.change()
		}
		o := build.Options{Context: dir, Tags: []string{"cache"}}
		if tc.opts != nil {
			tc.opts(&o)
		}
		if _, err := f.build(t, o); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := f.steps(build.StepDone); !slices.Equal(got[1:], tc.rerun) {
			t.Errorf("%s: steps run = %q, want FROM and %q", tc.name, got, tc.rerun)
		}
	}
	// CMD changes the config, not a layer: a new image with the same layers.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nARG MODE=a\nCOPY a /a\nWORKDIR /w\nENV E=2\nCOPY b /b\nCMD [\"y\"]\n"), 0o644)
	last, err := f.build(t, build.Options{Context: dir, Tags: []string{"cache"}, Args: map[string]string{"MODE": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.steps(build.StepCached); len(got) != 3 {
		t.Errorf("after a CMD change, cached steps = %q, want all three", got)
	}
	if fmt.Sprint(last.Config.Cmd) != "[y]" {
		t.Errorf("Cmd = %q", last.Config.Cmd)
	}
}

// TestMultiStage: only the stages the target needs are built; COPY
// --from takes files (with their owners) from a stage, by name or
// index, or from an image.
func TestMultiStage(t *testing.T) {
	f := newFixture(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox AS base
COPY --chown=1000:1000 a /out/a

FROM base AS unused
COPY b /never

FROM scratch AS other
COPY b /b

FROM scratch
COPY --from=base /out/ /
COPY --from=2 /b /b2
COPY --from=busybox /etc/group /group
`,
		"a": "from base", "b": "bee",
	})
	img, err := f.build(t, build.Options{Name: "app", Context: dir, Tags: []string{"multi"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.steps(build.StepStarted) {
		if strings.Contains(s, "unused") {
			t.Errorf("a stage the target does not need was built: %s", s)
		}
	}
	root := f.rootfs(t, img)
	for p, want := range map[string]string{"a": "from base", "b2": "bee", "group": "root:x:0:\nnogroup:x:65534:\n", "bin/busybox": "<missing>"} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "a")); err != nil {
		t.Error(err)
	} else if uid, gid := ownerOf(st); uid != 1000 || gid != 1000 {
		t.Errorf("/a copied from a stage has owner %d:%d, want 1000:1000 kept", uid, gid)
	}
	if len(img.Layers) != 3 {
		t.Errorf("%d layers, want 3 (scratch and three COPYs)", len(img.Layers))
	}

	// A target: the named stage is the image.
	img, err = f.build(t, build.Options{Context: dir, Target: "other", Tags: []string{"other"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 {
		t.Errorf("target other: %d layers", len(img.Layers))
	}
}

// TestAdd: ADD unpacks local archives and fetches URLs, checking a
// checksum when given (from a server on loopback).
func TestAdd(t *testing.T) {
	f := newFixture(t)
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "pkg/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pkg/file", Mode: 0o644, Size: 5})
	tw.Write([]byte("inner"))
	tw.Close()
	zw.Close()
	body := "downloaded"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body)))
	var zst bytes.Buffer
	zw2, _ := zstd.NewWriter(&zst)
	tw = tar.NewWriter(zw2)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zst/file", Mode: 0o644, Size: 9})
	tw.Write([]byte("from zstd"))
	tw.Close()
	zw2.Close()
	dir := writeContext(t, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM busybox\nADD archive.tgz /opt/\nADD --checksum=%s %s/files/data.txt /dl/\nADD plain /plain\n"+
			"ADD bz.tar.bz2 xz.tar.xz archive.tar.zst /unpacked/\n"+
			"ADD --chown=1234:5678 --chmod=0640 plain /owned\n"+
			"ADD --chown=nobody:nogroup --chmod=0751 %s/files/data.txt /dl-owned\n", sum, srv.URL, srv.URL),
		"plain": "not an archive",
	})
	os.WriteFile(filepath.Join(dir, "archive.tgz"), tgz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "archive.tar.zst"), zst.Bytes(), 0o644)
	// bzip2 and xz archives made by bzip2(1) and xz(1): Go writes neither.
	for _, name := range []string{"bz.tar.bz2", "xz.tar.xz"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	img, err := f.build(t, build.Options{Context: dir, Tags: []string{"add"}})
	if err != nil {
		t.Fatal(err)
	}
	root := f.rootfs(t, img)
	for p, want := range map[string]string{
		"opt/pkg/file": "inner", "dl/data.txt": "downloaded", "plain": "not an archive", "opt/archive.tgz": "<missing>",
		"unpacked/bz/file": "from bzip2", "unpacked/xz/file": "from xz", "unpacked/zst/file": "from zstd",
		"unpacked/bz.tar.bz2": "<missing>", "unpacked/xz.tar.xz": "<missing>", "unpacked/archive.tar.zst": "<missing>",
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "dl/data.txt")); err != nil || st.Mode().Perm() != 0o600 || st.ModTime().Year() != 2006 {
		t.Errorf("downloaded file: %v %v, want mode 0600 and Last-Modified time", st, err)
	}
	// --chown and --chmod, on a local file and on a download.
	for p, want := range map[string]struct {
		uid, gid int
		mode     os.FileMode
	}{"owned": {1234, 5678, 0o640}, "dl-owned": {65534, 65534, 0o751}} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if uid, gid := ownerOf(st); uid != want.uid || gid != want.gid || st.Mode().Perm() != want.mode {
			t.Errorf("/%s: %d:%d %v, want %d:%d %v", p, uid, gid, st.Mode().Perm(), want.uid, want.gid, want.mode)
		}
	}
	// An unchanged download comes from the cache, a changed one reruns
	// its step; a wrong checksum fails.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf("FROM busybox\nADD %s/files/data.txt /dl/\n", srv.URL)), 0o644)
	if _, err := f.build(t, build.Options{Context: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.build(t, build.Options{Context: dir}); err != nil {
		t.Fatal(err)
	}
	if got := f.steps(build.StepCached); len(got) != 1 {
		t.Errorf("an unchanged download: cached steps %q, want the ADD", got)
	}
	body = "changed"
	img, err = f.build(t, build.Options{Context: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.steps(build.StepCached); len(got) != 0 {
		t.Errorf("a changed download came from the cache: %q", got)
	}
	if got := readFile(t, filepath.Join(f.rootfs(t, img), "dl/data.txt")); got != "changed" {
		t.Errorf("/dl/data.txt after the download changed = %q", got)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf("FROM busybox\nADD --checksum=%s %s/files/data.txt /dl/\n", sum, srv.URL)), 0o644)
	if _, err := f.build(t, build.Options{Context: dir}); err == nil || !strings.Contains(err.Error(), "Dockerfile:2: ADD") || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("wrong checksum: %v", err)
	}
}

// TestOnbuildInlineAndNamedContexts: a base's ONBUILD triggers run at the
// start of a stage built FROM it; an inline Dockerfile; the ignore file
// beside a named Dockerfile wins over the context's; a named context
// (a directory) serves COPY --from.
func TestOnbuildInlineAndNamedContexts(t *testing.T) {
	f := newFixture(t)
	dir := writeContext(t, map[string]string{
		"base.Dockerfile":             "FROM busybox\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD ENV FROM_TRIGGER=yes\n",
		"app.Dockerfile":              "FROM onbase\nCOPY . /ctx/\nCOPY --from=extra /shared.txt /shared.txt\n",
		"app.Dockerfile.dockerignore": "ignored-by-app\n*.Dockerfile*\n",
		".dockerignore":               "trigger.txt\n",
		"trigger.txt":                 "fired",
		"ignored-by-app":              "x",
		"ignored-by-context-only.txt": "kept",
	})
	extra := writeContext(t, map[string]string{"shared.txt": "from a named context"})
	if _, err := f.build(t, build.Options{Context: dir, Dockerfile: "base.Dockerfile", Tags: []string{"onbase"}}); err != nil {
		t.Fatal(err)
	}
	img, err := f.build(t, build.Options{Context: dir, Dockerfile: "app.Dockerfile", Tags: []string{"app"}, Contexts: map[string]string{"extra": extra}})
	if err != nil {
		t.Fatal(err)
	}
	root := f.rootfs(t, img)
	for p, want := range map[string]string{
		"trigger.txt":                     "fired",
		"ctx/trigger.txt":                 "fired", // app's ignore file replaces .dockerignore
		"ctx/ignored-by-app":              "<missing>",
		"ctx/ignored-by-context-only.txt": "kept",
		"ctx/app.Dockerfile":              "<missing>",
		"shared.txt":                      "from a named context",
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if !slices.Contains(img.Config.Env, "FROM_TRIGGER=yes") {
		t.Errorf("Env = %q: the ONBUILD ENV did not run", img.Config.Env)
	}
	cfg, _ := f.images.ConfigFile(img)
	if len(cfg.Config.OnBuild) != 0 {
		t.Errorf("triggers were passed on: %q", cfg.Config.OnBuild)
	}

	inline, err := f.build(t, build.Options{Context: dir, Inline: "FROM busybox\nLABEL inline=yes\n", Tags: []string{"inline"}})
	if err != nil {
		t.Fatal(err)
	}
	if inline.Config.Labels["inline"] != "yes" {
		t.Errorf("inline Dockerfile: labels %v", inline.Config.Labels)
	}
	if _, err := f.build(t, build.Options{Name: "x", Context: dir, Inline: "FROM busybox\nBOGUS\n"}); err == nil || !strings.Contains(err.Error(), "dockerfile_inline:2: unknown instruction: BOGUS") {
		t.Errorf("inline syntax error: %v", err)
	}
}

// TestParallelStages: independent stages are built at once, each COPY
// waiting for the stage it reads.
func TestParallelStages(t *testing.T) {
	f := newFixture(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox AS a\nCOPY a /a\nFROM busybox AS b\nCOPY b /b\nFROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
		"a":          "a", "b": "b",
	})
	img, err := f.build(t, build.Options{Context: dir})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	var order []string
	for _, e := range f.events {
		if e.State == build.StepStarted || e.State == build.StepDone {
			order = append(order, fmt.Sprintf("%s %d %v", e.Stage, e.Index, e.State))
		}
	}
	f.mu.Unlock()
	// Both stages' FROM steps start before either stage's COPY ends: they
	// run at once, not one after the other.
	firstDone := slices.IndexFunc(order, func(s string) bool { return strings.HasSuffix(s, " 2 2") })
	aStart, bStart := slices.Index(order, "a 1 0"), slices.Index(order, "b 1 0")
	if aStart < 0 || bStart < 0 || firstDone < 0 || aStart > firstDone || bStart > firstDone {
		t.Errorf("stages ran one after the other: %q", order)
	}
	root := f.rootfs(t, img)
	if readFile(t, filepath.Join(root, "a"))+readFile(t, filepath.Join(root, "b")) != "ab" {
		t.Error("final stage lacks a stage's file")
	}
}

// TestPullOfBaseImages: a present base image is used as it is; Pull (the
// --pull flag and the pull key) fetches it again, and a missing one is
// fetched; scratch and stages are never pulled; a failed pull is an error
// naming the image.
func TestPullOfBaseImages(t *testing.T) {
	f := newFixture(t)
	var pulled []string
	pullErr := error(nil)
	f.b.Pull = func(ctx context.Context, ref string) (image.Image, error) {
		pulled = append(pulled, ref)
		if pullErr != nil {
			return image.Image{}, pullErr
		}
		return f.images.Get(ctx, "busybox")
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox AS base\nCOPY a /a\n\nFROM scratch AS s\nCOPY a /a\n\nFROM base\nCOPY --from=s /a /b\n",
		"a":          "a",
	})
	if _, err := f.build(t, build.Options{Context: dir, Tags: []string{"p"}}); err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 0 {
		t.Errorf("a present base image was pulled: %q", pulled)
	}
	if _, err := f.build(t, build.Options{Context: dir, Tags: []string{"p"}, Pull: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pulled, []string{"busybox"}) {
		t.Errorf("with Pull, pulled %q, want busybox once", pulled)
	}

	pulled, pullErr = nil, errors.New("registry unreachable")
	if _, err := f.build(t, build.Options{Context: dir, Tags: []string{"p"}, Pull: true}); err == nil || !strings.Contains(err.Error(), "registry unreachable") {
		t.Errorf("a failed pull with Pull: %v", err)
	}
	missing := writeContext(t, map[string]string{"Dockerfile": "FROM example.test/nothing:1\n"})
	_, err := f.build(t, build.Options{Context: missing, Tags: []string{"m"}})
	if err == nil || !strings.Contains(err.Error(), `"example.test/nothing:1"`) || !strings.Contains(err.Error(), "registry unreachable") {
		t.Errorf("a missing base that cannot be pulled: %v", err)
	}
	if !slices.Equal(pulled, []string{"busybox", "example.test/nothing:1"}) {
		t.Errorf("pulled %q", pulled)
	}
	if _, err := f.images.Get(t.Context(), "m"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a failed build tagged m: %v", err)
	}
}
