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

	before := containerIDOf(t, e, "a")
	fromStdin("--env-file", "sub/other.env", "up", "-d", "--no-recreate")
	if containerIDOf(t, e, "a") != before {
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

// containerIDOf is the ID of a service's first container in project gf.
func containerIDOf(t *testing.T, e *env, service string) string {
	t.Helper()
	return strings.TrimSpace(e.must("-p", "gf", "ps", "-a", "-q", "--no-trunc", service).stdout)
}
