package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDependsOnLongFormMustActAsCompose: condition: service_started,
// required: false (a failing optional job does not fail up) and
// restart: true (a dependent restarts when its dependency is recreated,
// one without it keeps running).
func TestDependsOnLongFormMustActAsCompose(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: dep
services:
  db: {image: busybox, command: [sleep, '3600'], environment: {V: "${V:-1}"}}
  app:
    image: busybox
    command: [sleep, '3600']
    depends_on:
      db: {condition: service_started, restart: true}
      opt: {condition: service_completed_successfully, required: false}
  other: {image: busybox, command: [sleep, '3600'], depends_on: {db: {condition: service_started}}}
  opt: {image: busybox, command: [sh, -c, 'exit 3']}
`})
	e.downAtEnd("dep")
	e.must("up", "-d")
	if rows := psRows(t, e); rows["app"].State != "running" || rows["other"].State != "running" || rows["opt"].State != "exited" {
		t.Fatalf("up -d with an optional dependency that fails: %+v", rows)
	}
	id := func(s string) string { return containerIDOf(t, e, s) }
	app, db := id("app"), id("db")
	e.environ = []string{"V=2"}
	r := e.must("--progress", "plain", "up", "-d", "-t", "1")
	e.environ = nil
	if id("db") == db || id("app") != app {
		t.Fatalf("db must be recreated and app kept: db %s -> %s, app %s -> %s", db, id("db"), app, id("app"))
	}
	if !strings.Contains(r.stderr, "dep-app-1 Stopped") || !strings.Contains(r.stderr, "dep-app-1 Started") || strings.Contains(r.stderr, "dep-other-1 Stopped") {
		t.Fatalf("restart: true must restart app, and only app:\n%s", r.stderr)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("dep")
}

// TestVerbFlagsMustActAsCompose: config keeps $$ and loads back to the
// same text; COMPOSE_PROJECT_NAME names the project, and ps and down work
// from it without any file, set in the environment or in .env; logs -n; ps --filter status=; ls --filter
// name=; kill --remove-orphans kills and removes the orphans; rm -s -v
// takes the anonymous volumes along; config -o and --hash; pull --policy;
// create's flags.
func TestVerbFlagsMustActAsCompose(t *testing.T) {
	e := newEnv(t)
	const file = `
services:
  a: {image: busybox, command: [sh, -c, 'echo one; echo "$$HOME ${WORD}"; exec sleep 3600'], volumes: [/anon]}
`
	e.writeProject(map[string]string{".env": "WORD=dotenv-word\n", "compose.yaml": file + "  b: {image: busybox, command: [sleep, '3600']}\n"})
	e.downAtEnd("envp")

	cfg := e.must("config").stdout
	if !strings.Contains(cfg, `echo "$$HOME dotenv-word"`) {
		t.Fatalf("config must keep $$ and interpolate ${WORD}:\n%s", cfg)
	}
	if again := e.cmdIn(cfg, "-f", "-", "config"); again.code != 0 || again.stdout != cfg {
		t.Fatalf("config's output does not load back to itself: %+v\nfirst:\n%s", again, cfg)
	}
	if r := e.must("config", "--services"); r.stdout != "a\nb\n" {
		t.Fatalf("config --services: %q", r.stdout)
	}
	// -o writes what config prints to the file, in either format.
	e.must("config", "-o", "out.yaml")
	e.must("config", "--format", "json", "--output", "out.json")
	outYAML, _ := os.ReadFile(filepath.Join(e.dir, "out.yaml"))
	outJSON, _ := os.ReadFile(filepath.Join(e.dir, "out.json"))
	if string(outYAML) != cfg || !json.Valid(outJSON) || string(outJSON) != e.must("config", "--format", "json").stdout {
		t.Fatalf("config -o: %q, json %q", outYAML, outJSON)
	}

	e.environ = []string{"COMPOSE_PROJECT_NAME=envp"}
	defer func() { e.environ = nil }()
	e.must("up", "-d")
	logsContain(t, e, nil, "a", "/root dotenv-word")
	if r := e.must("logs", "-n", "1", "--no-log-prefix", "a"); r.stdout != "/root dotenv-word\n" {
		t.Fatalf("logs -n 1: %q", r.stdout)
	}
	e.must("stop", "-t", "1", "b")
	if r := e.must("ps", "-a", "--filter", "status=exited", "--format", "{{.Service}}"); r.stdout != "b\n" {
		t.Fatalf("ps --filter status=exited: %q", r.stdout)
	}
	if r := e.must("ls", "-a", "--filter", "name=envp", "--format", "{{.Name}}"); r.stdout != "envp\n" {
		t.Fatalf("ls --filter name=envp: %q", r.stdout)
	}
	if r := e.must("ls", "-a", "-q", "--filter", "name=nomatch"); r.stdout != "" {
		t.Fatalf("ls --filter name=nomatch: %q", r.stdout)
	}

	e.writeProject(map[string]string{"compose.yaml": file})
	e.must("kill", "--remove-orphans")
	if rows := psRows(t, e); len(rows) != 1 || rows["a"].State != "exited" {
		t.Fatalf("kill --remove-orphans: %+v", rows)
	}
	if vols := e.must("volume", "ls", "-q").stdout; strings.Count(vols, "\n") != 1 {
		t.Fatalf("a's anonymous volume: %q", vols)
	}
	e.must("rm", "-s", "-v", "a")
	if vols := e.must("volume", "ls", "-q").stdout; vols != "" || psNames(e) != "" {
		t.Fatalf("rm -s -v left %q, containers %q", vols, psNames(e))
	}

	// create, as docker compose's: --scale, --pull, --build, a changed
	// service recreated unless --no-recreate, --force-recreate an
	// unchanged one, --remove-orphans.
	more := file + "  b: {image: busybox, command: [sleep, '3600']}\n  c: {build: ./c, command: [sleep, '3600']}\n"
	e.writeProject(map[string]string{"compose.yaml": more, "c/Dockerfile": "FROM busybox\nLABEL v=1\n"})
	ids := func(service string) string { return e.must("ps", "-a", "-q", "--no-trunc", service).stdout }
	// pull --policy missing leaves the present busybox alone; always
	// pulls it (and fails: no registry is reachable).
	if r := e.must("--progress", "plain", "pull", "--policy", "missing", "a"); strings.Contains(r.stderr, "Pulling") {
		t.Fatalf("pull --policy missing of a present image: %+v", r)
	}
	if r := e.berth("pull", "--policy", "always", "a"); r.code == 0 || !strings.Contains(r.stderr, "busybox") {
		t.Fatalf("pull --policy always with no registry: %+v", r)
	}
	if r := e.berth("create", "--pull", "always", "a"); r.code == 0 || !strings.Contains(r.stderr, "busybox") || psNames(e) != "" {
		t.Fatalf("create --pull always with no registry: %+v, containers %s", r, psNames(e))
	}
	e.must("create", "--scale", "b=2", "--pull", "missing")
	if names, states := psNames(e), e.must("ps", "-a", "--format", "{{.State}}").stdout; names != "envp-a-1,envp-b-1,envp-b-2,envp-c-1" || states != strings.Repeat("created\n", 4) {
		t.Fatalf("create --scale b=2: %s\n%s", names, states)
	}
	a0, b0, c0 := ids("a"), ids("b"), ids("c")
	e.writeProject(map[string]string{".env": "WORD=changed\n", "c/Dockerfile": "FROM busybox\nLABEL v=2\n"})
	e.must("create", "--no-recreate", "a", "c")
	if ids("a") != a0 || ids("c") != c0 {
		t.Fatal("create --no-recreate recreated")
	}
	e.must("create", "a", "c")
	if ids("a") == a0 || ids("c") != c0 {
		t.Fatal("create must recreate the changed a, and keep c (its image is not rebuilt without --build)")
	}
	e.must("create", "--build", "c")
	if ids("c") == c0 {
		t.Fatal("create --build must rebuild c's image and recreate c")
	}
	e.must("create", "--force-recreate", "--scale", "b=2", "b")
	if b := ids("b"); b == b0 || strings.Count(b, "\n") != 2 {
		t.Fatalf("create --force-recreate b: %q, was %q", b, b0)
	}
	// config --hash is the hash berth labels the containers with.
	hash := strings.Fields(e.must("config", "--hash", "a").stdout)
	if labels := e.must("ps", "-a", "--format", "{{.Labels}}", "a").stdout; len(hash) != 2 || hash[0] != "a" || !strings.Contains(labels, "com.docker.compose.config-hash="+hash[1]) {
		t.Fatalf("config --hash a: %q; a's labels %q", hash, labels)
	}
	e.writeProject(map[string]string{"compose.yaml": file, ".env": "WORD=dotenv-word\n"})
	e.must("create", "--remove-orphans")
	if names := psNames(e); names != "envp-a-1" {
		t.Fatalf("create --remove-orphans: %s", names)
	}

	e.must("up", "-d")
	if err := os.Rename(filepath.Join(e.dir, "compose.yaml"), filepath.Join(e.dir, "elsewhere.yaml")); err != nil {
		t.Fatal(err)
	}
	if r := e.must("ps", "--format", "{{.Name}}"); r.stdout != "envp-a-1\n" {
		t.Fatalf("ps from COMPOSE_PROJECT_NAME alone: %q", r.stdout)
	}
	// Set only in .env, as docker compose reads it (its COMPOSE_*
	// variables count as the environment's).
	e.environ = nil
	e.writeProject(map[string]string{".env": "COMPOSE_PROJECT_NAME=envp\n"})
	if r := e.must("ps", "--format", "{{.Name}}"); r.stdout != "envp-a-1\n" {
		t.Fatalf("ps from COMPOSE_PROJECT_NAME in .env alone: %q", r.stdout)
	}
	e.must("down", "-v", "-t", "1")
	e.mustBeGone("envp")
}
