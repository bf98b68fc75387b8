package files

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/compose"
)

// backdate makes every file under dir a minute old: the cache refuses
// inputs modified within a second of the load (they may be mid-write).
func backdate(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
}

// loadCounted loads through the cache and says whether compose-go ran.
func loadCounted(t *testing.T, o Options) (*types.Project, bool) {
	t.Helper()
	before := loadsRun.Load()
	p, _, err := Load(context.Background(), o, compose.Unsupported)
	if err != nil {
		t.Fatal(err)
	}
	return p, loadsRun.Load() != before
}

// TestLoadCacheFidelity: for every real-world project of testdata/config,
// a cache hit gives exactly the model a load gives.
func TestLoadCacheFidelity(t *testing.T) {
	clearComposeEnv(t)
	cases, _ := filepath.Glob("../testdata/config/*/compose.yaml")
	hits, warnedCases := 0, 0
	for _, c := range cases {
		dir := t.TempDir()
		if err := exec.Command("cp", "-a", filepath.Dir(c)+"/.", dir).Run(); err != nil {
			t.Fatal(err)
		}
		backdate(t, dir)
		want, _, err := Load(context.Background(), Options{WorkingDir: dir}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		o := Options{WorkingDir: dir, CacheDir: filepath.Join(dir, ".cache")}
		if _, ran := loadCounted(t, o); !ran {
			t.Fatalf("%s: first load was a hit", c)
		}
		got, ran := loadCounted(t, o)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the cached model differs from a load", c)
		}
		// The warnings a hit gives are those of the model.
		_, warned, err := Load(context.Background(), o, compose.Unsupported)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if w := compose.Unsupported(want); !reflect.DeepEqual(warned, w) {
			t.Errorf("%s: Load through the cache warns %q, the model %q", c, warned, w)
		} else if len(w) > 0 {
			warnedCases++
		}
		uses, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
		if !ran {
			hits++
		} else if !strings.Contains(string(uses), "extends") && !strings.Contains(string(uses), "include") {
			t.Logf("%s: not cached", c)
		}
	}
	// Most of them must be cacheable, or the cache is useless.
	if hits < len(cases)*2/3 {
		t.Errorf("%d of %d projects hit the cache", hits, len(cases))
	}
	if warnedCases == 0 {
		t.Error("no project has unsupported keys: the warnings were not compared")
	}
}

// TestLoadCacheInvalidation changes each kind of input and expects a miss
// and the new model.
func TestLoadCacheInvalidation(t *testing.T) {
	clearComposeEnv(t)
	t.Setenv("BERTH_TEST_TAG", "")
	os.Unsetenv("BERTH_TEST_TAG")
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	os.MkdirAll(sub, 0o755)
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		backdate(t, dir)
	}
	write("compose.yaml", "services:\n  web:\n    image: busybox:${TAG:-none}\n    env_file:\n      - path: web.env\n        required: false\n    environment:\n      FROM_OS: ${BERTH_TEST_TAG:-unset}\n")
	o := Options{WorkingDir: sub, CacheDir: filepath.Join(t.TempDir(), "cache")}
	expect := func(what string, wantRan bool, check func(p *types.Project) string) {
		t.Helper()
		p, ran := loadCounted(t, o)
		if ran != wantRan {
			t.Fatalf("%s: compose-go ran = %v, want %v", what, ran, wantRan)
		}
		if msg := check(p); msg != "" {
			t.Fatalf("%s: %s", what, msg)
		}
	}
	image := func(want string) func(p *types.Project) string {
		return func(p *types.Project) string {
			if got := p.Services["web"].Image; got != want {
				return "image " + got + ", want " + want
			}
			return ""
		}
	}
	env := func(k, want string) func(p *types.Project) string {
		return func(p *types.Project) string {
			got := "<unset>"
			if v := p.Services["web"].Environment[k]; v != nil {
				got = *v
			}
			if got != want {
				return k + "=" + got + ", want " + want
			}
			return ""
		}
	}
	expect("first load", true, image("busybox:none"))
	expect("unchanged", false, image("busybox:none"))

	write("compose.yaml", "services:\n  web:\n    image: busybox:${TAG:-none}\n    command: [a]\n    env_file:\n      - path: web.env\n        required: false\n    environment:\n      FROM_OS: ${BERTH_TEST_TAG:-unset}\n")
	expect("compose file changed", true, func(p *types.Project) string {
		if c := p.Services["web"].Command; len(c) != 1 {
			return "command not changed"
		}
		return ""
	})
	expect("unchanged again", false, image("busybox:none"))

	write(".env", "TAG=one\n")
	expect(".env appeared", true, image("busybox:one"))
	write(".env", "TAG=two\n")
	expect(".env changed", true, image("busybox:two"))
	expect("unchanged .env", false, image("busybox:two"))

	write("web.env", "A=1\n")
	expect("optional env_file appeared", true, env("A", "1"))
	write("web.env", "A=2\n")
	expect("env_file changed", true, env("A", "2"))

	t.Setenv("BERTH_TEST_TAG", "x")
	expect("environment changed", true, env("FROM_OS", "x"))
	expect("same environment", false, env("FROM_OS", "x"))

	write("compose.override.yaml", "services:\n  web:\n    image: override\n")
	expect("override file appeared", true, image("override"))
	if err := os.WriteFile(filepath.Join(sub, "compose.yaml"), []byte("services:\n  sub:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backdate(t, dir)
	expect("a nearer compose file appeared", true, func(p *types.Project) string {
		if _, ok := p.Services["sub"]; !ok {
			return "discovery did not find sub/compose.yaml"
		}
		return ""
	})
	os.Remove(filepath.Join(sub, "compose.yaml"))
	expect("it went again", true, image("override"))

	id := binaryID
	binaryID = func() string { return "another binary" }
	expect("another binary", true, image("override"))
	binaryID = id
	expect("the first binary", true, image("override"))

	o.Profiles = []string{"p"}
	expect("other options", true, image("override"))

	write("compose.override.yaml", "services:\n  web:\n    image: recent\n")
	os.Chtimes(filepath.Join(dir, "compose.override.yaml"), time.Now(), time.Now())
	expect("written just now", true, image("recent"))
	expect("not cached while recent", true, image("recent"))
}

// TestLoadCacheRefuses: projects whose inputs compose-go alone knows are
// never answered from the cache.
func TestLoadCacheRefuses(t *testing.T) {
	clearComposeEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("services:\n  base:\n    image: one\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n    extends:\n      file: base.yaml\n      service: base\n"), 0o644)
	backdate(t, dir)
	o := Options{WorkingDir: dir, CacheDir: filepath.Join(dir, "cache")}
	loadCounted(t, o)
	os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("services:\n  base:\n    image: two\n"), 0o644)
	backdate(t, dir)
	p, ran := loadCounted(t, o)
	if !ran || p.Services["web"].Image != "two" {
		t.Fatalf("extends: ran %v, image %q", ran, p.Services["web"].Image)
	}
}

// clearComposeEnv unsets every variable that steers loading (as compose's
// tests do), so the developer's environment cannot change the outcome.
func clearComposeEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_DISABLE_ENV_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}
