package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleFile is the absolute path of examples/<name>/compose.yaml.
func exampleFile(t *testing.T, name string) string {
	t.Helper()
	f, err := filepath.Abs(filepath.Join("..", "examples", name, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logsContain waits until the service's logs hold every one of want;
// global are the flags before logs (-f FILE, --profile).
func logsContain(t *testing.T, e *env, global []string, service string, want ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		out := e.must(append(global, "logs", "--no-color", "--no-log-prefix", service)...).stdout
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("%s logs lack %q:\n%s", service, w, out)
			}
		}
		return nil
	})
}

// TestMigrateExampleMustGateOnHealthAndCompletion brings up
// examples/migrate: the migration runs only once db is healthy (it writes
// into a directory db makes when it turns ready), the app only once the
// migration exited 0 (it prints what the migration wrote); a failing
// migration fails up and the app is never created.
func TestMigrateExampleMustGateOnHealthAndCompletion(t *testing.T) {
	e := newEnv(t)
	f := exampleFile(t, "migrate")
	e.downAtEnd("migrate")

	r := e.must("-f", f, "up", "--wait", "--wait-timeout", "60")
	for _, w := range []string{"migrate-db-1 Healthy", "migrate-app-1 Running"} {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("up --wait lacks %q:\n%s", w, r.stderr)
		}
	}
	rows := psRows(t, e, "-f", f)
	if rows["db"].Health != "healthy" || rows["app"].State != "running" ||
		rows["migrate"].State != "exited" || !strings.Contains(rows["migrate"].Status, "Exited (0)") {
		t.Fatalf("ps after up: %+v", rows)
	}
	logsContain(t, e, []string{"-f", f}, "app", "app: schema is migration 1")
	logsContain(t, e, []string{"-f", f}, "migrate", "migrated")

	// A migration that fails stops up: the app is created (as Compose
	// creates every container first) but never started.
	e.must("-f", f, "down", "-v", "-t", "1")
	e.writeProject(map[string]string{"broken.yaml": "services:\n  migrate:\n    command: [sh, -c, 'echo bad migration; exit 3']\n"})
	r = e.berth("-f", f, "-f", filepath.Join(e.dir, "broken.yaml"), "up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, "migrate-migrate-1 did not complete successfully: exit 3") || !strings.Contains(r.stderr, "bad migration") {
		t.Fatalf("up with a failing migration: %+v", r)
	}
	if app, ok := psRows(t, e, "-p", "migrate")["app"]; ok && app.State != "created" {
		t.Fatalf("app %s although the migration failed", app.State)
	}
	e.must("-p", "migrate", "down", "-v", "-t", "1")
	e.mustBeGone("migrate")
}

// TestProfilesExampleMustStartOnlyActiveProfiles brings up
// examples/profiles with no profile, with --profile and with
// COMPOSE_PROFILES, and runs a tool service of an inactive profile by
// naming it, as Compose does.
func TestProfilesExampleMustStartOnlyActiveProfiles(t *testing.T) {
	e := newEnv(t)
	f := exampleFile(t, "profiles")
	e.downAtEnd("profiles")

	e.must("-f", f, "up", "-d")
	if rows := psRows(t, e, "-f", f); len(rows) != 1 || rows["web"].State != "running" {
		t.Fatalf("up without a profile: %+v", rows)
	}
	e.must("-f", f, "--profile", "debug", "up", "-d")
	rows := psRows(t, e, "-f", f, "--profile", "debug")
	if len(rows) != 2 || rows["web"].State != "running" || rows["debug"].State != "running" {
		t.Fatalf("up --profile debug: %+v", rows)
	}
	// debug fetches web's page by name.
	logsContain(t, e, []string{"-f", f, "--profile", "debug"}, "debug", "hello from berth")

	t.Setenv("COMPOSE_PROFILES", "debug")
	if out := e.must("-f", f, "ps", "--services").stdout; out != "debug\nweb\n" && out != "web\ndebug\n" {
		t.Fatalf("ps --services with COMPOSE_PROFILES=debug: %q", out)
	}
	os.Unsetenv("COMPOSE_PROFILES")

	r := e.must("-f", f, "run", "--rm", "migrate-tool")
	if !strings.Contains(r.stdout, "tool ran") {
		t.Fatalf("run migrate-tool: %+v", r)
	}
	e.must("-f", f, "--profile", "debug", "down", "-t", "1")
	e.mustBeGone("profiles")
}

// TestSecretsExampleMustMountSecretsAndConfigs brings up examples/secrets:
// a secret from a file, one from the environment with its mode, and a
// config from inline content at a chosen path.
func TestSecretsExampleMustMountSecretsAndConfigs(t *testing.T) {
	e := newEnv(t)
	f := exampleFile(t, "secrets")
	e.downAtEnd("secrets")
	t.Setenv("DB_PASSWORD", "s3cret")

	e.must("-f", f, "up", "-d")
	logsContain(t, e, []string{"-f", f}, "app", "user: app\n", "password: 6 bytes, mode 400\n", "config: greeting=hello from a config\n")
	e.must("-f", f, "down", "-t", "1")
	e.mustBeGone("secrets")
}

// TestVerbsMustActOnNamedServicesOfInactiveProfiles: as in Compose, a
// service named on the command line is acted on whatever its profiles
// (logs, stop, start, restart, pause, unpause, top, images, ps, kill,
// wait, rm);
// without names, verbs that change containers act on the active profiles'
// services only, and down leaves the others' containers (they are not
// orphans).
func TestVerbsMustActOnNamedServicesOfInactiveProfiles(t *testing.T) {
	e := newEnv(t)
	f := exampleFile(t, "profiles")
	e.downAtEnd("profiles")
	e.must("-f", f, "--profile", "debug", "up", "-d")

	logsContain(t, e, []string{"-f", f}, "debug", "hello from berth")
	state := func(service string) string { return psRows(t, e, "-f", f)[service].State }
	e.must("-f", f, "stop", "-t", "1", "debug")
	if state("debug") != "exited" || state("web") != "running" {
		t.Fatalf("stop debug: %+v", psRows(t, e, "-f", f))
	}
	e.must("-f", f, "start", "debug")
	e.must("-f", f, "pause", "debug")
	if state("debug") != "paused" {
		t.Fatalf("pause debug: %+v", psRows(t, e, "-f", f))
	}
	e.must("-f", f, "unpause", "debug")
	e.must("-f", f, "restart", "-t", "1", "debug")
	if r := e.must("-f", f, "top", "debug"); !strings.Contains(r.stdout, "wget") && !strings.Contains(r.stdout, "sleep") {
		t.Fatalf("top debug: %s", r.stdout)
	}
	if r := e.must("-f", f, "images", "debug"); !strings.Contains(r.stdout, "IMAGE ID") || !strings.Contains(r.stdout, "profiles-debug-1") {
		t.Fatalf("images debug:\n%s", r.stdout)
	}
	if r := e.must("-f", f, "ps", "--services", "debug"); strings.TrimSpace(r.stdout) != "debug" {
		t.Fatalf("ps --services debug: %q", r.stdout)
	}

	// Without names: the active profiles' services only.
	e.must("-f", f, "stop", "-t", "1")
	if state("debug") != "running" || state("web") != "exited" {
		t.Fatalf("stop without a profile: %+v", psRows(t, e, "-f", f))
	}
	e.must("-f", f, "down", "-t", "1")
	if rows := psRows(t, e, "-f", f); len(rows) != 1 || rows["debug"].State != "running" {
		t.Fatalf("down without a profile: %+v", rows)
	}
	e.must("-f", f, "kill", "debug")
	if r := e.berth("-f", f, "wait", "debug"); r.code != 137 {
		t.Fatalf("wait debug after kill: %+v", r)
	}
	e.must("-f", f, "rm", "-f", "debug")
	if rows := psRows(t, e, "-f", f); len(rows) != 0 {
		t.Fatalf("kill and rm debug: %+v", rows)
	}
	e.must("-f", f, "--profile", "debug", "down", "-t", "1")
	e.mustBeGone("profiles")
}
