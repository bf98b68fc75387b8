package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunMustRunAOneOffContainerOfAService: berth run starts the
// dependencies, passes the exit code, honours -e, -v, -w, -u,
// --entrypoint, -p, --no-deps, --rm, -d and --name, and one-off containers
// stay out of ps without -a and go with down --remove-orphans.
func TestRunMustRunAOneOffContainerOfAService(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.writeProject(map[string]string{"d/hello": "from host", "compose.yaml": fmt.Sprintf(`
name: runs
services:
  db: {image: busybox, command: [sleep, '3600']}
  app:
    image: busybox
    command: [sh, -c, 'echo service']
    depends_on: [db]
    restart: always
    ports: ["%d:80"]
    environment: {A: from-file}
`, port)})
	e.downAtEnd("runs")

	r := e.berth("run", "--rm", "-e", "B=cli", "app", "sh", "-c", "echo $A $B; echo oops >&2; exit 3")
	if r.code != 3 || r.stdout != "from-file cli\n" || !strings.Contains(r.stderr, "oops") {
		t.Fatalf("run: %+v", r)
	}
	if names := psNames(e); names != "runs-db-1" {
		t.Fatalf("after run --rm: %s (db must run, nothing else stay)", names)
	}

	r = e.must("run", "--rm", "--no-deps", "-v", "./d:/d", "-w", "/d", "-u", "1000", "--entrypoint", "sh -c", "app", "id -u; pwd; cat hello")
	if r.stdout != "1000\n/d\nfrom host" {
		t.Fatalf("run with overrides: %q", r.stdout)
	}

	r = e.must("run", "-d", "--name", "web-job", "-p", fmt.Sprintf("%d:80", port), "app", "sh", "-c", "mkdir -p /www; echo up > /www/index.html; httpd -f -p 80 -h /www")
	if strings.TrimSpace(r.stdout) != "web-job" {
		t.Fatalf("run -d printed %q", r.stdout)
	}
	eventually(t, 10*time.Second, func() error {
		body, err := httpGet(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil || !strings.Contains(body, "up") {
			return fmt.Errorf("%q %v", body, err)
		}
		return nil
	})
	if names := psNames(e); names != "runs-db-1,web-job" {
		t.Fatalf("ps -a: %s", names)
	}
	if ps := e.must("ps", "--format", "{{.Name}}").stdout; strings.Contains(ps, "web-job") {
		t.Fatalf("ps without -a shows the one-off: %s", ps)
	}
	if r := e.berth("run", "--rm", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such service: nope") {
		t.Fatalf("run of an unknown service: %+v", r)
	}
	e.must("down", "-t", "1", "--remove-orphans")
	e.mustBeGone("runs")
	if _, err := os.Stat(filepath.Join(e.dir, "d", "hello")); err != nil {
		t.Fatal(err)
	}
}
