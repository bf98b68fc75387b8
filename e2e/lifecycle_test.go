package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// psNames lists the project's container names, sorted, as ps -a prints them.
func psNames(e *env, args ...string) string {
	e.t.Helper()
	r := e.must(append(args, "ps", "-a", "--format", "{{.Name}}")...)
	return strings.Join(strings.Fields(r.stdout), ",")
}

// TestDryRunAndExplainMustShowThePlanWithReasons: --dry-run prints the
// plan and changes nothing; --explain says why a service is recreated.
func TestDryRunAndExplainMustShowThePlanWithReasons(t *testing.T) {
	e := newEnv(t)
	project := func(greeting string) string {
		return `
name: plan
services:
  db:
    image: busybox
    command: ["sleep", "3600"]
  app:
    image: busybox
    command: ["sleep", "3600"]
    depends_on: [db]
    environment:
      GREETING: ` + greeting + "\n"
	}
	e.writeProject(map[string]string{"compose.yaml": project("hi")})
	e.downAtEnd("plan")

	r := e.must("--dry-run", "up", "-d")
	for _, want := range []string{
		"#1 network plan_default: create (not found)",
		"container plan-db-1: create (new service) after #1",
		"container plan-app-1: start (created) after #",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, r.stdout)
		}
	}
	if names := psNames(e); names != "" {
		t.Fatalf("dry run created %s", names)
	}

	e.must("up", "-d")
	before := e.must("ps", "-q", "db").stdout
	e.writeProject(map[string]string{"compose.yaml": project("hello")})
	r = e.must("up", "-d", "--explain", "-t", "1")
	if !strings.Contains(r.stdout, "create (replaces plan-app-1: environment.GREETING changed)") || strings.Contains(r.stdout, "plan-db-1") {
		t.Fatalf("explain:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "plan-app-1 Recreated") {
		t.Fatalf("progress:\n%s", r.stderr)
	}
	if after := e.must("ps", "-q", "db").stdout; after != before {
		t.Fatalf("db was recreated too")
	}
	if r := e.must("up", "-d", "--explain"); !strings.Contains(r.stdout, "nothing to do") {
		t.Fatalf("no-op explain:\n%s", r.stdout)
	}
	r = e.must("--dry-run", "down", "-v")
	if !strings.Contains(r.stdout, "container plan-db-1: remove (down) after #") || psNames(e) != "plan-app-1,plan-db-1" {
		t.Fatalf("dry-run down:\n%s\nleft %s", r.stdout, psNames(e))
	}
}

// TestFailedRecreateMustLeaveTheOldContainerRunning: the replacement is
// created first, so when that fails the running service is untouched.
func TestFailedRecreateMustLeaveTheOldContainerRunning(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: keep\nservices:\n  s: {image: busybox, command: [sleep, '3600']}\n"})
	e.downAtEnd("keep")
	e.must("up", "-d")
	before := e.must("ps", "-q").stdout
	e.writeProject(map[string]string{"compose.yaml": "name: keep\nservices:\n  s: {image: nope, command: [sleep, '3600']}\n"})
	r := e.berth("up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, `image "nope:latest": registry unreachable`) {
		t.Fatalf("up with a missing image: %+v", r)
	}
	if after := e.must("ps", "-q").stdout; after != before || strings.TrimSpace(after) == "" {
		t.Fatalf("running container changed: %q -> %q", before, after)
	}
	if names := psNames(e); names != "keep-s-1" {
		t.Fatalf("containers after the failed recreate: %s", names)
	}
}

// TestVerbsMustWorkFromTheProjectNameWhenTheFileIsBroken: with -p NAME,
// ps, stop, start and down never read the compose file, as in Compose.
func TestVerbsMustWorkFromTheProjectNameWhenTheFileIsBroken(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: named
services:
  db: {image: busybox, command: [sleep, '3600']}
  app: {image: busybox, command: [sleep, '3600'], depends_on: [db]}
`})
	e.downAtEnd("named")
	e.must("up", "-d")
	e.writeProject(map[string]string{"compose.yaml": "services: [this is not compose\n"})
	if r := e.berth("ps"); r.code == 0 {
		t.Fatalf("ps with a broken file and no -p succeeded: %+v", r)
	}
	if names := psNames(e, "-p", "named"); names != "named-app-1,named-db-1" {
		t.Fatalf("ps -p: %s", names)
	}
	r := e.must("-p", "named", "stop", "-t", "1")
	// Dependents stop first, as with the file.
	if i, j := strings.Index(r.stderr, "named-app-1 Stopped"), strings.Index(r.stderr, "named-db-1 Stopped"); i < 0 || j < i {
		t.Fatalf("stop order:\n%s", r.stderr)
	}
	e.must("-p", "named", "start")
	if n := len(strings.Fields(e.must("-p", "named", "ps", "-q").stdout)); n != 2 {
		t.Fatalf("%d running after start", n)
	}
	e.must("-p", "named", "down", "-t", "1")
	e.mustBeGone("named")
}

// TestDownVMustRemoveTheOrphanAndKeepAVolumeInUse: down -v removes an
// orphan with its volume (Compose v5's behaviour), and keeps a volume that
// another project's container mounts, naming it.
func TestDownVMustRemoveTheOrphanAndKeepAVolumeInUse(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: orph
services:
  a: {image: busybox, command: [sleep, '3600'], volumes: ['data:/data']}
  b: {image: busybox, command: [sleep, '3600'], volumes: ['data:/data']}
volumes:
  data: {}
`})
	e.downAtEnd("orph")
	e.must("up", "-d")
	e.writeProject(map[string]string{"compose.yaml": `
name: orph
services:
  a: {image: busybox, command: [sleep, '3600'], volumes: ['data:/data']}
volumes:
  data: {}
`})
	other := filepath.Join(e.dir, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "compose.yaml"), []byte(`
name: other
services:
  c: {image: busybox, command: [sleep, '3600'], volumes: ['shared:/data']}
volumes:
  shared: {name: orph_data, external: true}
`), 0o644)
	e.downAtEnd("other")
	e.must("-f", "other/compose.yaml", "up", "-d")

	r := e.must("down", "-v", "-t", "1")
	if !strings.Contains(r.stderr, "volume orph_data is kept: it is in use by container other-c-1") {
		t.Fatalf("down -v with the volume in use elsewhere:\n%s", r.stderr)
	}
	if names := psNames(e, "-p", "orph"); names != "" {
		t.Fatalf("down -v left %s (the orphan must go too)", names)
	}
	if _, err := os.Stat(filepath.Join(e.root, "volumes", "orph_data")); err != nil {
		t.Fatalf("the volume in use was removed: %v", err)
	}
	e.must("-f", "other/compose.yaml", "down", "-t", "1")
	e.writeProject(map[string]string{"compose.yaml": "name: orph\nservices:\n  a: {image: busybox, command: [sleep, '3600']}\nvolumes:\n  data: {}\n"})
	// The volume still carries orph's label, so down -v of orph removes it.
	e.must("down", "-v")
	if _, err := os.Stat(filepath.Join(e.root, "volumes", "orph_data")); !os.IsNotExist(err) {
		t.Fatalf("down -v kept the volume nobody uses: %v", err)
	}
}

// TestScaleMustReuseLowNumbersAndRemoveTheHighest: --scale up numbers new
// replicas from the lowest free number, and down removes the highest.
func TestScaleMustReuseLowNumbersAndRemoveTheHighest(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: sc\nservices:\n  w: {image: busybox, command: [sleep, '3600']}\n"})
	e.downAtEnd("sc")
	e.must("up", "-d", "--scale", "w=3")
	if names := psNames(e); names != "sc-w-1,sc-w-2,sc-w-3" {
		t.Fatalf("after scale 3: %s", names)
	}
	var projects []struct{ Name, Status, ConfigFiles string }
	if err := json.Unmarshal([]byte(e.must("ls", "--format", "json").stdout), &projects); err != nil || len(projects) != 1 ||
		projects[0].Name != "sc" || projects[0].Status != "running(3)" || !strings.HasSuffix(projects[0].ConfigFiles, "compose.yaml") {
		t.Fatalf("ls: %+v %v", projects, err)
	}
	if r := e.must("images", "--format", "{{.ContainerName}} {{.Repository}}"); r.stdout != "sc-w-1 busybox\nsc-w-2 busybox\nsc-w-3 busybox\n" {
		t.Fatalf("images: %q", r.stdout)
	}
	// -q: each image once, as docker compose prints it (no "sha256:").
	if r := e.must("images", "-q"); !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.stdout) {
		t.Fatalf("images -q: %q", r.stdout)
	}
	e.must("scale", "w=2")
	if names := psNames(e); names != "sc-w-1,sc-w-2" {
		t.Fatalf("after scale w=2: %s", names)
	}
	e.must("up", "-d", "--scale", "w=1", "-t", "1")
	if names := psNames(e); names != "sc-w-1" {
		t.Fatalf("after scale 1: %s", names)
	}
	e.must("stop", "-t", "1")
	if r := e.must("ls"); strings.Contains(r.stdout, "sc") {
		t.Fatalf("ls shows a stopped project without -a:\n%s", r.stdout)
	}
	if r := e.must("ls", "-a", "-q"); r.stdout != "sc\n" {
		t.Fatalf("ls -a -q: %q", r.stdout)
	}
	// scale --no-deps leaves w's dependency alone; without it, scale
	// starts it too.
	e.writeProject(map[string]string{"compose.yaml": "name: sc\nservices:\n  w: {image: busybox, command: [sleep, '3600'], depends_on: [d]}\n  d: {image: busybox, command: [sleep, '3600']}\n"})
	e.must("scale", "--no-deps", "w=2")
	if names := psNames(e); names != "sc-w-1,sc-w-2" {
		t.Fatalf("after scale --no-deps w=2: %s", names)
	}
	e.must("scale", "w=2")
	if names := psNames(e); names != "sc-d-1,sc-w-1,sc-w-2" {
		t.Fatalf("after scale w=2 with its dependency: %s", names)
	}
	e.writeProject(map[string]string{"compose.yaml": "name: sc\nservices:\n  w: {image: busybox, command: [sleep, '3600'], container_name: only}\n"})
	if r := e.berth("up", "-d", "--scale", "w=2"); r.code == 0 || !strings.Contains(r.stderr, "container_name") {
		t.Fatalf("--scale with container_name: %+v", r)
	}
}

// TestUnknownVerbsAndFlagsMustFail: a script must not take a typo for
// success.
func TestUnknownVerbsAndFlagsMustFail(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: typo\nservices:\n  s: {image: busybox, command: [sleep, '3600']}\n"})
	for _, args := range [][]string{{"frobnicate"}, {"image", "frobnicate"}, {"up", "--no-such-flag"}, {"up", "nosuchservice"}} {
		r := e.berth(args...)
		if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("berth %v: exit %d, stderr %q; want exit 1 and one line", args, r.code, r.stderr)
		}
	}
	if names := psNames(e, "-p", "typo"); names != "" {
		t.Fatalf("created %s", names)
	}
}
