package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGlobalAndUpFlagsMustActAsCompose: -f - reads the file from stdin,
// --project-directory is where relative paths and .env are read from,
// --env-file replaces .env, --parallel 1 still brings every service up,
// up --no-start only creates, up --no-recreate keeps a changed service's
// container, ps --status filters, logs --tail and -t, --ansi always and
// never, and version's forms.
func TestGlobalAndUpFlagsMustActAsCompose(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{
		"sub/.env":       "GREETING=from-dotenv\n",
		"sub/other.env":  "GREETING=from-env-file\n",
		"sub/data/hello": "hello file\n",
	})
	const project = `
name: gf
services:
  a: {image: busybox, command: [sh, -c, 'echo $$G; cat /data/hello; exec sleep 3600'], environment: {G: "${GREETING}"}, volumes: ["./data:/data"]}
  b: {image: busybox, command: [sleep, '3600'], depends_on: [a]}
`
	e.downAtEnd("gf")
	fromStdin := func(args ...string) string {
		t.Helper()
		c := e.cmd(t.Context(), append([]string{"-f", "-", "--project-directory", "sub"}, args...)...)
		c.Stdin = strings.NewReader(project)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("berth -f - %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	state := func() map[string]psRow { return psRows(t, e, "-p", "gf") }

	// up --no-start in the foreground only creates, and exits 0 at once.
	if out := fromStdin("--parallel", "1", "up", "--no-start"); !strings.Contains(out, "gf-a-1 Created") || !strings.Contains(out, "gf-b-1 Created") {
		t.Fatalf("up --no-start:\n%s", out)
	}
	if rows := state(); rows["a"].State != "created" || rows["b"].State != "created" {
		t.Fatalf("up --no-start: %+v", rows)
	}
	fromStdin("--parallel", "1", "up", "-d")
	if rows := state(); rows["a"].State != "running" || rows["b"].State != "running" {
		t.Fatalf("up --parallel 1: %+v", rows)
	}
	logsContain(t, e, []string{"-p", "gf"}, "a", "from-dotenv\nhello file")

	before := containerIDOf(t, e, "a", "-p", "gf")
	fromStdin("--env-file", "sub/other.env", "up", "-d", "--no-recreate")
	if containerIDOf(t, e, "a", "-p", "gf") != before {
		t.Fatalf("up --no-recreate recreated a")
	}
	if out := fromStdin("--env-file", "sub/other.env", "up", "-d", "-t", "1"); !strings.Contains(out, "gf-a-1 Recreated") {
		t.Fatalf("up with --env-file did not recreate a:\n%s", out)
	}
	logsContain(t, e, []string{"-p", "gf"}, "a", "from-env-file")

	if r := e.must("-p", "gf", "logs", "--tail", "1", "-t", "--no-log-prefix", "a"); !strings.HasPrefix(r.stdout, "20") || !strings.HasSuffix(r.stdout, " hello file\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("logs --tail 1 -t: %q", r.stdout)
	}
	if r := e.must("-p", "gf", "--ansi", "always", "logs", "a"); !strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("--ansi always: %q", r.stdout)
	}
	if r := e.must("-p", "gf", "--ansi", "never", "logs", "a"); strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("--ansi never: %q", r.stdout)
	}

	e.must("-p", "gf", "stop", "-t", "1", "b")
	if r := e.must("-p", "gf", "ps", "-a", "--status", "exited", "--format", "{{.Service}}"); r.stdout != "b\n" {
		t.Fatalf("ps --status exited: %q", r.stdout)
	}
	if r := e.must("-p", "gf", "ps", "--status", "running", "--format", "{{.Service}}"); r.stdout != "a\n" {
		t.Fatalf("ps --status running: %q", r.stdout)
	}

	var v struct{ Version string }
	if err := json.Unmarshal([]byte(e.must("version", "--format", "json").stdout), &v); err != nil || v.Version == "" {
		t.Fatalf("version --format json: %v %+v", err, v)
	}
	if r := e.must("version", "--short"); "v"+strings.TrimSpace(r.stdout) != v.Version {
		t.Fatalf("version --short %q, json %q", r.stdout, v.Version)
	}
	if r := e.must("version"); !strings.Contains(r.stdout, "Berth version "+v.Version) {
		t.Fatalf("version: %q", r.stdout)
	}
	e.must("-p", "gf", "down", "-t", "1")
	e.mustBeGone("gf")
}

// containerIDOf is the full ID of a service's container (after the global
// flags in global).
func containerIDOf(t *testing.T, e *env, service string, global ...string) string {
	t.Helper()
	return strings.TrimSpace(e.must(append(global, "ps", "-a", "-q", "--no-trunc", service)...).stdout)
}

// upPair brings up project: a, and b that depends on a, both sleeping.
func upPair(t *testing.T, project string) *env {
	t.Helper()
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: " + project + `
services:
  a: {image: busybox, command: [sleep, '3600']}
  b: {image: busybox, command: [sleep, '3600'], depends_on: [a]}
`})
	e.downAtEnd(project)
	e.must("up", "-d")
	return e
}

// TestUpAlwaysRecreateDepsMustRecreateTheDependencies: up SERVICE
// --always-recreate-deps recreates the services SERVICE depends on, even
// unchanged, and keeps SERVICE itself; with --no-recreate it is refused.
func TestUpAlwaysRecreateDepsMustRecreateTheDependencies(t *testing.T) {
	e := upPair(t, "ard")
	id := func(s string) string { return containerIDOf(t, e, s) }
	a, b := id("a"), id("b")
	if r := e.berth("up", "-d", "--always-recreate-deps", "--no-recreate", "b"); r.code != 1 || !strings.Contains(r.stderr, "--always-recreate-deps and --no-recreate are incompatible") {
		t.Fatalf("--always-recreate-deps --no-recreate: %+v", r)
	}
	e.must("up", "-d", "-t", "1", "--always-recreate-deps", "b")
	if id("a") == a || id("b") != b {
		t.Fatalf("up --always-recreate-deps b: a %s -> %s, b %s -> %s (want a recreated, b kept)", a, id("a"), b, id("b"))
	}
	e.must("down", "-t", "1")
	e.mustBeGone("ard")
}

// TestComposeVariablesAndProgressMustActAsCompose: NO_COLOR keeps colours
// out even with --ansi always; --progress (and COMPOSE_PROGRESS) plain,
// json, quiet, none and tty, and the combinations with --ansi Compose
// refuses (refused before anything changes); COMPOSE_ENV_FILES stands for
// --env-file.
func TestComposeVariablesAndProgressMustActAsCompose(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{
		"other.env": "WORD=from-compose-env-files\n",
		"compose.yaml": `
name: cvp
services:
  a: {image: busybox, command: [sh, -c, 'echo word=$$W; exec sleep 3600'], environment: {W: "${WORD:-unset}"}}
`})
	e.downAtEnd("cvp")
	with := func(vars []string, args ...string) result {
		t.Helper()
		e.environ = vars
		defer func() { e.environ = nil }()
		return e.berth(args...)
	}
	for _, args := range [][]string{{"--progress", "tty", "--ansi", "never"}, {"--progress", "plain", "--ansi", "always"}, {"--progress", "fancy"}} {
		if r := e.berth(append(args, "up", "-d")...); r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("berth %v up -d: %+v", args, r)
		}
	}
	if names := psNames(e, "-p", "cvp"); names != "" {
		t.Fatalf("a refused --progress created %s", names)
	}

	r := with([]string{"COMPOSE_PROGRESS=json", "COMPOSE_ENV_FILES=other.env"}, "up", "-d")
	if r.code != 0 {
		t.Fatalf("COMPOSE_PROGRESS=json up -d: %+v", r)
	}
	var sawStarted bool
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var ev struct{ ID, Text string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("COMPOSE_PROGRESS=json: %q is not JSON: %v", line, err)
		}
		sawStarted = sawStarted || ev.ID == "Container cvp-a-1" && ev.Text == "Started"
	}
	if !sawStarted {
		t.Fatalf("COMPOSE_PROGRESS=json: no Started event for cvp-a-1:\n%s", r.stderr)
	}
	logsContain(t, e, nil, "a", "word=from-compose-env-files")

	if r := with([]string{"NO_COLOR=1"}, "--ansi", "always", "logs", "a"); r.code != 0 || strings.Contains(r.stdout, "\x1b[") || !strings.Contains(r.stdout, "word=") {
		t.Fatalf("NO_COLOR=1 --ansi always logs: %+v", r)
	}
	if r := e.must("--ansi", "always", "logs", "a"); !strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("--ansi always logs has no colour: %q", r.stdout)
	}

	// COMPOSE_* variables set only in .env count as if set in the
	// environment, as in Compose: profiles, and the flags' defaults
	// (--progress, --remove-orphans); the environment and flags win.
	withB := `
name: cvp
services:
  a: {image: busybox, command: [sh, -c, 'echo word=$$W; exec sleep 3600'], environment: {W: "${WORD:-unset}"}}
  b: {image: busybox, command: [sleep, '3600'], profiles: [extra]}
`
	e.writeProject(map[string]string{"compose.yaml": withB, ".env": "WORD=from-compose-env-files\nCOMPOSE_PROFILES=extra\nCOMPOSE_PROGRESS=quiet\n"})
	if r := e.must("up", "-d"); r.stderr != "" {
		t.Errorf("COMPOSE_PROGRESS=quiet in .env: up -d printed %q", r.stderr)
	}
	if names := psNames(e); names != "cvp-a-1,cvp-b-1" {
		t.Fatalf("COMPOSE_PROFILES=extra in .env: running %q", names)
	}
	if r := with([]string{"COMPOSE_PROGRESS=plain"}, "restart", "-t", "1", "b"); r.code != 0 || !strings.Contains(r.stderr, "Container cvp-b-1 Started") {
		t.Errorf("COMPOSE_PROGRESS=plain in the environment did not win over .env: %+v", r)
	}
	e.writeProject(map[string]string{"compose.yaml": strings.SplitAfter(withB, "3600'], environment: {W: \"${WORD:-unset}\"}}\n")[0],
		".env": "WORD=from-compose-env-files\nCOMPOSE_REMOVE_ORPHANS=1\n"})
	if r := e.must("--progress", "plain", "up", "-d"); !strings.Contains(r.stderr, "cvp-b-1") {
		t.Errorf("--progress plain did not win over .env, or no orphan removed: %q", r.stderr)
	}
	if names := psNames(e); names != "cvp-a-1" {
		t.Fatalf("COMPOSE_REMOVE_ORPHANS=1 in .env: left %q", names)
	}
	for _, mode := range []string{"quiet", "none"} {
		if r := e.must("--progress", mode, "restart", "-t", "1", "a"); r.stderr != "" {
			t.Errorf("--progress %s restart: %q", mode, r.stderr)
		}
	}
	if r := e.must("--progress", "plain", "restart", "-t", "1", "a"); !strings.Contains(r.stderr, "Container cvp-a-1 Started") || strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("--progress plain restart: %q", r.stderr)
	}
	if r := e.must("--progress", "tty", "restart", "-t", "1", "a"); !strings.Contains(r.stderr, "\x1b[") || !strings.Contains(r.stderr, "cvp-a-1") {
		t.Errorf("--progress tty restart: %q", r.stderr)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("cvp")
}
