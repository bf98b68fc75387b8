package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyTestdata copies e2e/testdata/<name> into the env's project dir.
func (e *env) copyTestdata(name string) {
	e.t.Helper()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(e.dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestBuildMustRunStepsAsContainers builds a project whose Dockerfile has
// RUN in every form (shell, exec, heredocs), with cache, bind, secret and
// tmpfs mounts, extra hosts, shm size and the default and none networks;
// checks what the steps wrote, the image config, that a rebuild runs no
// step, and that up runs the built image.
func TestBuildMustRunStepsAsContainers(t *testing.T) {
	e := newEnv(t)
	e.copyTestdata(t.Name())
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

	// A rebuild comes from the cache: every step CACHED, no container.
	r = e.must("--progress", "plain", "build", "app")
	if strings.Contains(r.stderr, "DONE") && strings.Contains(strings.ReplaceAll(r.stderr, "FROM busybox DONE", ""), " DONE") {
		t.Errorf("a step ran again on an unchanged rebuild:\n%s", r.stderr)
	}

	e.must("up", "-d")
	want := []string{
		"shell form: hello", "exec form", "heredoc script", "shebang script", "shell heredoc hello",
		"cache lines: 1", "bound file", "secret: s3cret", "secret env: s3cret", "tmpfs ok",
		"extra host ok", "shm 32768", "network: default route", "no mount stubs", "65534",
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
	e.copyTestdata(t.Name())
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
