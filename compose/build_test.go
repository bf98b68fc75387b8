package compose

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine/build"
)

// TestBuildOptionsMapEveryKey: each build key reaches the builder's
// options as docker compose would pass it to BuildKit.
func TestBuildOptionsMapEveryKey(t *testing.T) {
	t.Setenv("TOKEN_VAR", "t0k")
	t.Setenv("FROM_ENV", "env-value")
	p, err := loadYAML(t, `
services:
  base:
    build: ./base
  web:
    image: registry.example/web:2
    build:
      context: ./app
      dockerfile: Containerfile
      args: {A: "1", B: two}
      target: prod
      labels: {l: v}
      tags: [web:extra]
      no_cache: true
      pull: true
      network: host
      extra_hosts: ["db.local=10.0.0.5"]
      shm_size: 64m
      ulimits: {nofile: {soft: 100, hard: 200}, nproc: 50}
      secrets: [tok, {source: file_secret, target: other}]
      additional_contexts:
        base: service:base
        assets: ./assets
        img: docker-image://busybox
secrets:
  tok: {environment: TOKEN_VAR}
  file_secret: {file: ./secret.txt}
`)
	if err != nil {
		t.Fatal(err)
	}
	bo, deps, err := buildOptions(p, p.Services["web"], BuildOptions{Args: map[string]*string{"B": ptr("cli"), "FROM_ENV": nil, "UNSET_VAR": nil}})
	if err != nil {
		t.Fatal(err)
	}
	dir := p.WorkingDir
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Name", bo.Name, "web")
	check("Context", bo.Context, filepath.Join(dir, "app"))
	check("Dockerfile", bo.Dockerfile, "Containerfile")
	check("Args", bo.Args, map[string]string{"A": "1", "B": "cli", "FROM_ENV": "env-value"})
	check("Target", bo.Target, "prod")
	check("Labels", bo.Labels, map[string]string{"l": "v"})
	check("Tags", bo.Tags, []string{"registry.example/web:2", "web:extra"})
	check("NoCache Pull", []bool{bo.NoCache, bo.Pull}, []bool{true, true})
	check("Network", bo.Network, "host")
	check("ExtraHosts", bo.ExtraHosts, []string{"db.local:10.0.0.5"})
	check("ShmSize", bo.ShmSize, 64<<20)
	check("Ulimits", fmt.Sprintf("%+v", bo.Ulimits), "[{Type:RLIMIT_NOFILE Hard:200 Soft:100} {Type:RLIMIT_NPROC Hard:50 Soft:50}]")
	check("Secrets", fmt.Sprintf("%+v", bo.Secrets), fmt.Sprintf("map[other:{File:%s Env:} tok:{File: Env:TOKEN_VAR}]", filepath.Join(dir, "secret.txt")))
	check("Contexts", bo.Contexts, map[string]string{"assets": filepath.Join(dir, "assets"), "base": "docker-image://p-base", "img": "docker-image://busybox"})
	check("deps", deps, []string{"base"})

	base, _, err := buildOptions(p, p.Services["base"], BuildOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	check("base Tags", base.Tags, []string{"p-base"})
	check("base NoCache", base.NoCache, true)
}

func ptr(s string) *string { return &s }

// TestBuildOptionsRefuse: what Berth cannot build is one clear error
// naming the service and key.
func TestBuildOptionsRefuse(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"build: {context: ., ssh: [default]}", `service "s": build.ssh: ssh forwarding is not supported`},
		{"build: {context: \"https://github.com/x/y.git\"}", `service "s": build.context`},
		{"build: {context: ., network: mynet}", `service "s": build.network: "mynet"`},
		{"build: {context: ., platforms: [linux/s390x]}", `service "s": build.platforms`},
		{"build: {context: ., privileged: true}", `service "s": build.privileged`},
	} {
		p, err := loadYAML(t, "services:\n  s:\n    "+tc.yaml+"\n")
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		_, _, err = buildOptions(p, p.Services["s"], BuildOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || errors.Is(err, errdefs.ErrUnknown) {
			t.Errorf("%s: %v, want %q...", tc.yaml, err, tc.want)
		}
	}
}

// TestUnsupportedBuildKeys: build keys Berth ignores are named.
func TestUnsupportedBuildKeys(t *testing.T) {
	p, err := loadYAML(t, "services:\n  s:\n    build: {context: ., cache_from: [x], args: {A: b}}\n")
	if err != nil {
		t.Fatal(err)
	}
	got := Unsupported(p)
	if !slices.Contains(got, `service "s": build key "cache_from" is not supported yet and is ignored`) || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, `"args"`) || strings.Contains(s, `key "build"`) }) {
		t.Errorf("warnings = %q", got)
	}
}

// TestWatchRules: triggers map changed paths to actions through their
// ignore and include patterns and the build context's .dockerignore;
// bad triggers are clear errors.
func TestWatchRules(t *testing.T) {
	p, err := loadYAML(t, `
services:
  web:
    build: .
    develop:
      watch:
        - {path: ./src, action: sync, target: /app/src, ignore: ["*.tmp", "gen/"]}
        - {path: ., action: rebuild, include: ["*.go", "go.mod"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	dir := p.WorkingDir
	writeFile(t, filepath.Join(dir, ".dockerignore"), "src/secret\n")
	rules, err := watchRules(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		rule int // -1: none
		rel  string
	}{
		{"src/a.js", 0, "a.js"},
		{"src/x.tmp", -1, ""},
		{"src/gen/out.js", -1, ""},
		{"src/secret", -1, ""},
		{"main.go", 1, "main.go"},
		{"README.md", -1, ""},
	} {
		got, rel := -1, ""
		for i, r := range rules {
			if rl, ok := r.matches(filepath.Join(dir, tc.path)); ok {
				got, rel = i, rl
				break
			}
		}
		if got != tc.rule || rel != tc.rel {
			t.Errorf("%s: rule %d (%q), want %d (%q)", tc.path, got, rel, tc.rule, tc.rel)
		}
	}
	if rules[0].target("a.js") != "/app/src/a.js" {
		t.Errorf("target = %s", rules[0].target("a.js"))
	}
	for _, tc := range []struct{ yaml, want string }{
		{"image: busybox\n    develop: {watch: [{path: ., action: rebuild}]}", "rebuild needs a build section"},
		{"image: busybox", "none of the selected services is configured for watch"},
	} {
		p, err := loadYAML(t, "services:\n  s:\n    "+tc.yaml+"\n")
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if _, err := watchRules(p, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildProgressTTYAndPlain: build steps reach both displays as
// BuildKit draws them: "#N [service stage i/n] INSTRUCTION", then CACHED,
// DONE with the time, or ERROR; a RUN's output while it runs.
func TestBuildProgressTTYAndPlain(t *testing.T) {
	events := []build.Event{
		{Build: "web", Step: 1, Index: 1, Total: 3, Text: "FROM busybox", State: build.StepStarted},
		{Build: "web", Step: 1, Index: 1, Total: 3, Text: "FROM busybox", State: build.StepDone, Duration: 30 * time.Millisecond},
		{Build: "web", Step: 2, Index: 2, Total: 3, Text: "COPY a /a", State: build.StepStarted},
		{Build: "web", Step: 2, Index: 2, Total: 3, Text: "COPY a /a", State: build.StepCached},
		{Build: "web", Step: 3, Stage: "final", Index: 3, Total: 3, Text: "RUN make", State: build.StepStarted},
		{Build: "web", Step: 3, Stage: "final", Index: 3, Total: 3, Text: "RUN make", State: build.StepLog, Line: "compiling main.go"},
		{Build: "web", Step: 3, Stage: "final", Index: 3, Total: 3, Text: "RUN make", State: build.StepFailed, Err: errors.New("exit code 2")},
	}
	for _, tc := range []struct {
		mode progress.Mode
		want []string
	}{
		{progress.Plain, []string{
			"#1 [web 1/3] FROM busybox Building\n", "#1 [web 1/3] FROM busybox DONE 0.0s\n", "#2 [web 2/3] COPY a /a CACHED\n",
			"#3 [web final 3/3] RUN make compiling main.go\n", "#3 [web final 3/3] RUN make ERROR\n",
		}},
		{progress.TTY, []string{"✔ #1 [web 1/3] FROM busybox DONE 0.0s", "✔ #2 [web 2/3] COPY a /a CACHED", "✘ #3 [web final 3/3] RUN make ERROR"}},
	} {
		var b bytes.Buffer // read once the display is closed
		w := progress.New(&b, tc.mode)
		show := buildProgress(w)
		for _, ev := range events {
			show(ev)
		}
		w.Close()
		for _, want := range tc.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("mode %v: output lacks %q:\n%s", tc.mode, want, b.String())
			}
		}
	}
}
