package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBuildMustRunStepsAsContainers builds a project whose Dockerfile has
// RUN in every form (shell, exec, heredocs, a SHELL), with cache, bind,
// secret and tmpfs mounts, ENV and WORKDIR, extra hosts, shm size and the
// default, none and host networks; checks what the steps wrote, the image
// config, that a rebuild runs no step, and that up runs the built image.
func TestBuildMustRunStepsAsContainers(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	t.Setenv("BUILD_TOKEN", "s3cret")
	e.downAtEnd("buildrun")

	r := e.must("--progress", "plain", "build")
	if strings.Contains(r.stderr, "RUN exit 1") {
		t.Errorf("the unused stage was built:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "[app final 9/") && !strings.Contains(r.stderr, "[app final ") {
		t.Errorf("no BuildKit-style step names in the output:\n%s", r.stderr)
	}

	// The image config says what the Dockerfile says.
	var imgs []struct {
		RepoTags []string
		Config   struct {
			Labels       map[string]string
			ExposedPorts map[string]struct{}
			WorkingDir   string
			Healthcheck  struct{ Test []string }
		}
	}
	out := e.must("image", "inspect", "buildrun-app")
	if err := json.Unmarshal([]byte(out.stdout), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image inspect: %v\n%s", err, out.stdout)
	}
	c := imgs[0].Config
	if c.Labels["com.example.built-by"] != "berth" || c.WorkingDir != "/srv" || len(c.ExposedPorts) != 1 || strings.Join(c.Healthcheck.Test, " ") != "CMD-SHELL true" {
		t.Errorf("image config = %+v", c)
	}
	e.must("image", "inspect", "buildrun-app:extra")
	// Docker's predefined proxy ARGs reach RUN without an ARG line and stay
	// out of the image's history.
	if h := e.must("image", "history", "--no-trunc", "buildrun-app").stdout; strings.Contains(h, "proxy.test") || !strings.Contains(h, "GREETING=hello") {
		t.Errorf("history:\n%s", h)
	}

	// A rebuild comes from the cache: every step CACHED, no container.
	r = e.must("--progress", "plain", "build", "app")
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, " DONE ") && !strings.Contains(l, "] FROM ") {
			t.Errorf("a step ran again on an unchanged rebuild: %s", l)
		}
	}

	e.must("up", "-d")
	want := []string{
		"shell form: hello", "exec form", "heredoc script", "shebang script", "shell heredoc hello",
		"proxy: http://proxy.test:3128",
		"cache lines: 1", "bound file", "secret: s3cret", "secret env: s3cret", "tmpfs ok",
		"extra host ok", "shm 32768", "network: default route", "no mount stubs",
		"pwd /work from-env", "via SHELL", "65534",
	}
	eventually(t, 10*time.Second, func() error {
		logs := e.must("logs", "--no-log-prefix", "app").stdout
		for _, w := range want {
			if !strings.Contains(logs, w+"\n") {
				return &missing{w, logs}
			}
		}
		return nil
	})
	// The secret is in no layer.
	if r := e.must("exec", "-T", "app", "sh", "-c", "grep -rl s3cret / --exclude-dir=proc --exclude-dir=sys --exclude=results 2>/dev/null || true"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("the secret is in the image: %s", r.stdout)
	}
	if r := e.must("exec", "-T", "offline", "cat", "/links"); strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("a network: none step saw %q links, want only lo", r.stdout)
	}
	// A network: host step ran in the network namespace berth runs in.
	if e.netns == "" {
		host, _ := os.Readlink("/proc/self/ns/net")
		if r := e.must("exec", "-T", "hostnet", "cat", "/netns"); strings.TrimSpace(r.stdout) != host {
			t.Errorf("a network: host step ran in %q, the host's namespace is %q", r.stdout, host)
		}
	}
	e.must("down", "-t", "1")
	e.mustBeGone("buildrun")

	// --no-cache runs the steps again; the cache mount keeps its content.
	r = e.must("--progress", "plain", "build", "--no-cache", "app")
	if strings.Contains(r.stderr, "CACHED") {
		t.Errorf("--no-cache used the cache:\n%s", r.stderr)
	}
}

type missing struct{ want, got string }

func (m *missing) Error() string { return "missing " + m.want + " in:\n" + m.got }

// TestBuildFailureMustNameTheLineAndShowTheLog: a failing RUN is one error
// naming the service, the Dockerfile and its line, with the exit code and
// the step's last output; no image is tagged.
func TestBuildFailureMustNameTheLineAndShowTheLog(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	r := e.berth("--progress", "plain", "build")
	if r.code == 0 {
		t.Fatalf("a failing build succeeded:\n%s", r.stderr)
	}
	for _, w := range []string{`service "web": Dockerfile:3: RUN`, "exit code 3", "about to fail", "on stderr"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("error output lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "echo never") && strings.Contains(r.stderr, "never DONE") {
		t.Errorf("a step after the failure ran:\n%s", r.stderr)
	}
	if r := e.berth("image", "inspect", "buildfail-web"); r.code == 0 {
		t.Error("a failed build tagged its image")
	}
	if leaks := envLeaks(e); len(leaks) > 0 {
		t.Errorf("a failed build left: %v", leaks)
	}
}

// copyTree copies a directory (an example) into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// backdate makes every file under dir a minute old.
func backdate(t testing.TB, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// loadCacheEntry is the inode of the env's one entry in the load cache: a
// load the cache answers leaves it, a load that fills it replaces it.
func loadCacheEntry(t *testing.T, e *env) uint64 {
	t.Helper()
	dir := filepath.Join(e.run, "cache", "load")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("load cache %s: %v, %d entries; want 1", dir, err, len(ents))
	}
	st, err := os.Stat(filepath.Join(dir, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestGoappExampleMustBuildAndWatch builds examples/goapp (a Go service
// compiled in the golang image made from Debian's golang-go, shipped FROM
// scratch), brings it up with its dependency, then edits files under
// berth watch: a static file is synced into the running container, a code
// change rebuilds the image and recreates the service.
func TestGoappExampleMustBuildAndWatch(t *testing.T) {
	tars := buildServiceImages(t)
	if tars["golang"] == "" {
		t.Fatal("images/build.sh made no golang image")
	}
	e := newEnv(t)
	e.must("image", "import", tars["golang"], "golang")
	src, _ := filepath.Abs("../examples/goapp")
	copyTree(t, src, e.dir)
	port := freePort(t)
	t.Setenv("GOAPP_PORT", fmt.Sprint(port))
	e.downAtEnd("goapp")

	r := e.must("--progress", "plain", "up", "-d", "--build")
	if !strings.Contains(r.stderr, "[api build ") || !strings.Contains(r.stderr, "FROM scratch") {
		t.Errorf("up --build showed no build steps:\n%s", r.stderr)
	}
	page := func(want ...string) func() error {
		return func() error {
			body, err := httpGet(fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					return fmt.Errorf("page %q lacks %q", body, w)
				}
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, page("hello from goapp (version 1)", "quote: simplicity is prerequisite for reliability"))

	out, stopWatch := e.startWatch(t)

	// An editor's save: write a temporary file, rename it over the old.
	tmp := filepath.Join(e.dir, "static", ".greeting.txt.tmp")
	os.WriteFile(tmp, []byte("hello again\n"), 0o644)
	os.Rename(tmp, filepath.Join(e.dir, "static", "greeting.txt"))
	eventually(t, 20*time.Second, page("hello again (version 1)"))

	code, _ := os.ReadFile(filepath.Join(e.dir, "main.go"))
	os.WriteFile(filepath.Join(e.dir, "main.go"), bytes.ReplaceAll(code, []byte(`"%s (version %s)\nquote: %s\n"`), []byte(`"%s (version %s)\nwisdom: %s\n"`)), 0o644)
	eventually(t, 3*time.Minute, page("hello again (version 1)", "wisdom: simplicity"))
	if !strings.Contains(out.String(), `Rebuilding service(s) ["api"]`) {
		t.Errorf("watch did not say it rebuilt:\n%s", out.String())
	}
	stopWatch()
	e.must("down", "-t", "1")
	e.mustBeGone("goapp")
}

// startWatch starts berth watch --no-up and waits until it watches; stop
// ends it (the test's cleanup does too), and a failed test logs its output.
func (e *env) startWatch(t *testing.T) (out *lockedBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	watch := e.cmd(ctx, "watch", "--no-up")
	out = &lockedBuffer{}
	watch.Stdout, watch.Stderr = out, out
	if err := watch.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stop = sync.OnceFunc(func() {
		cancel()
		watch.Wait()
	})
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("berth watch:\n%s", out.String())
		}
	})
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), "Watch enabled") {
			return fmt.Errorf("watch output: %q", out.String())
		}
		return nil
	})
	return out, stop
}

// TestBuiltImageMustPushAndReadWithSkopeo: a built image is a real OCI
// image: pushed to Debian's registry on loopback, skopeo reads its config
// as the Dockerfile says and its layers; image save writes it too.
func TestBuiltImageMustPushAndReadWithSkopeo(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.configure(t)
	e := newEnv(t)
	e.writeProject(map[string]string{
		"compose.yaml": "name: pushbuilt\nservices:\n  app:\n    image: " + reg.host + "/e2e/built:1\n    build: .\n",
		"Dockerfile": `FROM busybox
COPY hello.txt /srv/hello.txt
RUN echo ran > /srv/ran
ENV GREETING=hi
WORKDIR /srv
USER nobody
EXPOSE 8080/tcp
LABEL org.example.kind=test
HEALTHCHECK --interval=7s --retries=2 CMD ["true"]
ENTRYPOINT ["cat"]
CMD ["/srv/hello.txt"]
`,
		"hello.txt": "hello\n",
	})
	ref := reg.host + "/e2e/built:1"
	e.must("build")
	// docker build's equivalent, from the same cache: the same image.
	direct := strings.TrimSpace(e.must("image", "build", "-q", "-t", "direct:1", ".").stdout)
	if id := strings.TrimSpace(e.must("image", "inspect", "--format", "{{.Id}}", ref).stdout); direct != id || !strings.HasPrefix(id, "sha256:") {
		t.Errorf("image build made %q, the project's build %q", direct, id)
	}
	e.must("push")
	var cfg struct {
		Config struct {
			Env, Cmd, Entrypoint []string
			User, WorkingDir     string
			ExposedPorts         map[string]struct{}
			Labels               map[string]string
			Healthcheck          struct {
				Test     []string
				Interval int64
				Retries  int
			}
		}
		History []struct {
			CreatedBy string `json:"created_by"`
		}
		Rootfs struct {
			DiffIDs []string `json:"diff_ids"`
		}
	}
	// --raw: skopeo's own parse of a config keeps only the OCI fields,
	// and Healthcheck is Docker's.
	raw := reg.skopeo(t, "inspect", "--config", "--raw", "docker://"+ref)
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("skopeo inspect --config: %v\n%s", err, raw)
	}
	c := cfg.Config
	if strings.Join(c.Env, ",") != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,GREETING=hi" ||
		strings.Join(c.Cmd, " ") != "/srv/hello.txt" || strings.Join(c.Entrypoint, " ") != "cat" ||
		c.User != "nobody" || c.WorkingDir != "/srv" || len(c.ExposedPorts) != 1 || c.Labels["org.example.kind"] != "test" ||
		strings.Join(c.Healthcheck.Test, " ") != "CMD true" || c.Healthcheck.Interval != int64(7*time.Second) || c.Healthcheck.Retries != 2 {
		t.Errorf("config as skopeo reads it:\n%s", raw)
	}
	info := inspectJSON(t, reg.skopeo(t, "inspect", "docker://"+ref))
	// busybox's layer, COPY, RUN; WORKDIR /srv made none (COPY made /srv).
	if len(info.Layers) != 3 || len(cfg.Rootfs.DiffIDs) != 3 {
		t.Errorf("%d layers, %d diff IDs; want 3", len(info.Layers), len(cfg.Rootfs.DiffIDs))
	}
	if len(cfg.History) < 11 {
		t.Errorf("history has %d entries", len(cfg.History))
	}
	// The same bytes pulled back elsewhere run as built.
	other := newEnv(t)
	other.must("image", "pull", "-q", ref)
	save := filepath.Join(t.TempDir(), "built.tar")
	e.must("image", "save", "-o", save, ref)
	if st, err := os.Stat(save); err != nil || st.Size() == 0 {
		t.Errorf("image save: %v", err)
	}
}

// TestBuildComposeKeysMustReachTheBuild: --build-arg, a service's image as
// a named context (that service built first), dockerfile_inline, ulimits,
// no_cache, --with-dependencies;
// pull_policy build builds on every up; builder prune empties the cache.
func TestBuildComposeKeysMustReachTheBuild(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("buildkeys")
	e.must("build", "--build-arg", "FROM_CLI=from the cli", "app")
	e.must("image", "inspect", "buildkeys-base")
	// A dependency (depends_on) is built only with --with-dependencies.
	if r := e.berth("image", "inspect", "buildkeys-dep"); r.code == 0 {
		t.Error("build app built its dependency without --with-dependencies")
	}
	e.must("build", "--with-dependencies", "--build-arg", "FROM_CLI=from the cli", "app")
	e.must("image", "inspect", "buildkeys-dep")
	// no_cache: every build of dep runs its step again.
	if r := e.must("--progress", "plain", "build", "dep"); strings.Contains(r.stderr, "CACHED") || !strings.Contains(r.stderr, "RUN echo") {
		t.Errorf("a no_cache service's build used the cache:\n%s", r.stderr)
	}
	// The image as built: no up in between may rebuild it without the arg.
	e.must("up", "-d", "--no-build")
	eventually(t, 10*time.Second, func() error {
		logs := e.must("logs", "--no-log-prefix", "app").stdout
		if logs != "from the base service\nfrom the cli\n4242\n" {
			return fmt.Errorf("logs %q", logs)
		}
		return nil
	})
	r := e.must("--progress", "plain", "up", "-d")
	if !strings.Contains(r.stderr, "CACHED") {
		t.Errorf("pull_policy build did not build on up:\n%s", r.stderr)
	}
	r = e.must("builder", "prune", "-f")
	if !strings.Contains(r.stdout, "Deleted build cache objects: ") || strings.Contains(r.stdout, "objects: 0\n") {
		t.Errorf("builder prune: %s", r.stdout)
	}
	r = e.must("--progress", "plain", "build", "app")
	if strings.Contains(r.stderr, "CACHED") {
		t.Errorf("a build after builder prune used the cache:\n%s", r.stderr)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("buildkeys")
}

// TestWatchActionsMustReachRunningContainers: berth watch syncs and
// restarts (sync+restart), syncs and runs a command (sync+exec), restarts
// (restart), and syncs a path at its start (initial_sync).
func TestWatchActionsMustReachRunningContainers(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("watchacts")
	e.must("up", "-d")
	_, stopWatch := e.startWatch(t)
	in := func(cmd string) func() (string, error) {
		return func() (string, error) {
			r := e.berth("exec", "-T", "web", "sh", "-c", cmd)
			return strings.TrimSpace(r.stdout), nil
		}
	}
	wait := func(what, cmd, want string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			got, _ := in(cmd)()
			if got != want {
				return fmt.Errorf("%s: %q, want %q", what, got, want)
			}
			return nil
		})
	}
	wait("initial sync", "cat /init/seed.txt", "seeded")
	starts := func() string { s, _ := in("wc -l < /tmp/starts")(); return s }
	if s := starts(); s != "1" {
		t.Fatalf("starts = %s", s)
	}

	os.WriteFile(filepath.Join(e.dir, "conf", "app.conf"), []byte("v2\n"), 0o644)
	wait("sync+restart", "cat /etc/app/app.conf; wc -l < /tmp/starts", "v2\n2")

	os.WriteFile(filepath.Join(e.dir, "hooks", "h.txt"), []byte("hooked\n"), 0o644)
	wait("sync+exec", "cat /tmp/hooked", "hooked")

	os.WriteFile(filepath.Join(e.dir, "restart-me"), []byte("1\n"), 0o644)
	wait("restart", "wc -l < /tmp/starts", "3")

	// A burst of changes (a checkout) syncs every file and restarts once.
	for i := range 5 {
		os.WriteFile(filepath.Join(e.dir, "conf", fmt.Sprintf("burst%d.conf", i)), []byte("b\n"), 0o644)
		time.Sleep(50 * time.Millisecond)
	}
	wait("a burst", "ls /etc/app | grep -c burst; wc -l < /tmp/starts", "5\n4")
	time.Sleep(2 * time.Second)
	if s := starts(); s != "4" {
		t.Errorf("after a burst of 5 changes, %s starts; want 4 (one restart)", s)
	}

	// A file removed on the host goes from the container too; ignored
	// files and editors' temporary files never go.
	os.Remove(filepath.Join(e.dir, "init", "seed.txt"))
	os.WriteFile(filepath.Join(e.dir, "init", ".new.txt.swp"), []byte("vim\n"), 0o644)
	os.WriteFile(filepath.Join(e.dir, "init", "new.txt~"), []byte("emacs\n"), 0o644)
	os.WriteFile(filepath.Join(e.dir, "init", "notes.bak"), []byte("ignored\n"), 0o644)
	os.WriteFile(filepath.Join(e.dir, "init", "new.txt"), []byte("new\n"), 0o644)
	wait("sync of a removal", "ls -A /init", "new.txt")
	stopWatch()
	e.must("down", "-t", "1")
	e.mustBeGone("watchacts")
}

// TestBuildCacheMustFollowEveryInputOfRun changes one input of a RUN at a
// time and rebuilds: exactly the RUN steps from the first one that reads
// the changed input run again, the others come from the cache. A secret's
// value is no input (as in Docker); a cache mount keeps its content across
// builds, and --no-cache reruns every step.
func TestBuildCacheMustFollowEveryInputOfRun(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	// Old enough for the load cache, which keys the compose inputs only:
	// a rebuild whose project load it answers still follows the build's.
	backdate(t, e.dir)
	t.Setenv("BUILD_TOKEN", "one")
	all := []string{"/first", "/bound", "/secret", "/mode", "/uid", "/counts"}
	ran := func(args ...string) []string {
		t.Helper()
		r := e.must(append([]string{"--progress", "plain", "build"}, args...)...)
		var out []string
		for _, l := range strings.Split(r.stderr, "\n") {
			if !strings.Contains(l, "] RUN ") || !strings.Contains(l, " DONE ") {
				continue
			}
			for _, s := range all {
				if strings.Contains(l, "> "+s+" DONE") {
					out = append(out, s)
				}
			}
		}
		return out
	}
	edit := func(old, new string) {
		t.Helper()
		p := filepath.Join(e.dir, "Dockerfile")
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("Dockerfile lacks %q", old)
		}
		os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
	}
	if got := ran(); !slices.Equal(got, all) {
		t.Fatalf("first build ran %q", got)
	}
	var entry uint64
	for i, tc := range []struct {
		change string
		do     func()
		args   []string
		want   []string
	}{
		{"nothing", func() {}, nil, nil},
		{"the secret's value", func() { t.Setenv("BUILD_TOKEN", "two") }, nil, nil},
		{"a bind mount's file", func() { os.WriteFile(filepath.Join(e.dir, "bound", "file"), []byte("v2\n"), 0o644) }, nil, all[1:]},
		{"an ENV", func() { edit("ENV MODE=a", "ENV MODE=b") }, nil, all[3:]},
		{"USER", func() { edit("USER root", "USER 0") }, nil, all[4:]},
		{"WORKDIR", func() { edit("WORKDIR /\n", "WORKDIR /tmp\n") }, nil, all[5:]},
		{"a build argument", func() {}, []string{"--build-arg", "LEVEL=2"}, all[5:]},
		{"the first RUN's command", func() { edit("echo first >", "echo First >") }, []string{"--build-arg", "LEVEL=2"}, all},
	} {
		tc.do()
		if got := ran(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("after a change of %s, the steps run were %q, want %q", tc.change, got, tc.want)
		}
		if i == 1 { // the environment changed: the entry was made again
			entry = loadCacheEntry(t, e)
		}
	}
	if loadCacheEntry(t, e) != entry {
		t.Error("the rebuilds after the secret's change loaded the project again: the load cache was not used")
	}
	// The cache mount's step ran 7 times, and its file kept every line.
	if r := e.must("run", "--rm", "app", "cat", "/counts"); strings.TrimSpace(r.stdout) != "7" {
		t.Errorf("the cache mount holds %q lines after 7 runs", r.stdout)
	}
	if got := ran("--no-cache", "--build-arg", "LEVEL=2"); !slices.Equal(got, all) {
		t.Errorf("--no-cache ran %q", got)
	}
	// -q prints nothing at all on success.
	if r := e.must("build", "-q", "--build-arg", "LEVEL=2"); r.stdout+r.stderr != "" {
		t.Errorf("build -q printed %q", r.stdout+r.stderr)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("buildcache")
}
