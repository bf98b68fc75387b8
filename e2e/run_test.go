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

// TestRunWithATerminalMustBehaveAsOne: berth run in a terminal gives the
// command one (its size, raw keys, the exit code, Ctrl-P Ctrl-Q leaves it
// running), shows output written before berth could attach, and without
// a terminal connects stdin (-i, the default) unless -i=false; -t asks for
// a terminal whatever berth's stdio; --build builds first; --pull never
// refuses a missing image.
func TestRunWithATerminalMustBehaveAsOne(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{
		"b/Dockerfile": "FROM busybox\nRUN echo built > /built\n",
		"compose.yaml": `
name: runtty
services:
  app: {image: busybox, command: [sleep, '3600']}
  built: {build: ./b, command: [cat, /built]}
  absent: {image: absent:v1}
`})
	e.downAtEnd("runtty")

	if r := e.must("--dry-run", "run", "--name", "one", "app"); !strings.Contains(r.stdout, "container one: start (one-off (berth run), attached)") {
		t.Fatalf("dry run of run:\n%s", r.stdout)
	}
	shellInTerminal(t, e, 4, "run", "--rm", "app", "sh")
	if names := psNames(e); names != "" {
		t.Fatalf("after run --rm: %s", names)
	}

	// Output before berth attached is not lost.
	p := openPty(t, 24, 80)
	c := p.run(e, "run", "--rm", "app", "echo", "early")
	if code := exitCodeOf(t, c); code != 0 || !strings.Contains(p.out.String(), "early") {
		t.Fatalf("run echo: exit %d; terminal:\n%s", code, p.out.String())
	}

	// Ctrl-P Ctrl-Q: berth exits 0 and the one-off runs on.
	p = openPty(t, 24, 80)
	c = p.run(e, "run", "--name", "kept", "app", "sh")
	p.typeText(t, "echo ready\n")
	p.waitOutput(t, "ready")
	p.typeText(t, "\x10\x11")
	if code := exitCodeOf(t, c); code != 0 {
		t.Fatalf("detach: exit code %d; terminal:\n%s", code, p.out.String())
	}
	if ps := e.must("ps", "-a", "--format", "{{.Name}} {{.State}}").stdout; !strings.Contains(ps, "kept running") {
		t.Fatalf("after detaching: %s", ps)
	}

	// Without a terminal: stdin reaches the command, -i=false keeps it
	// out, -t gives a terminal anyway.
	in := e.cmd(t.Context(), "run", "--rm", "app", "sh", "-c", "read l; echo got $l; tty")
	in.Stdin = strings.NewReader("typed\n")
	out, err := in.Output()
	if string(out) != "got typed\nnot a tty\n" || err == nil {
		t.Fatalf("run with a pipe as stdin: %q %v", out, err)
	}
	in = e.cmd(t.Context(), "run", "--rm", "-i=false", "app", "cat")
	in.Stdin = strings.NewReader("typed\n")
	if out, err := in.Output(); string(out) != "" || err != nil {
		t.Fatalf("run -i=false: %q %v", out, err)
	}
	if r := e.must("run", "--rm", "-t", "app", "tty"); !strings.Contains(r.stdout, "/dev/pts/") {
		t.Fatalf("run -t: %+v", r)
	}
	if r := e.berth("run", "--rm", "-t", "-T", "app", "true"); r.code != 1 || !strings.Contains(r.stderr, "can't be used together") {
		t.Fatalf("run -t -T: %+v", r)
	}

	if r := e.must("run", "--rm", "--build", "built"); r.stdout != "built\n" {
		t.Fatalf("run --build: %+v", r)
	}
	if r := e.berth("run", "--rm", "--pull", "never", "absent"); r.code == 0 || !strings.Contains(r.stderr, "absent") {
		t.Fatalf("run --pull never of a missing image: %+v", r)
	}
	if r := e.berth("run", "--rm", "--pull", "sometimes", "app"); r.code != 1 || !strings.Contains(r.stderr, `--pull "sometimes"`) {
		t.Fatalf("run --pull sometimes: %+v", r)
	}
	e.must("down", "-t", "1", "--remove-orphans")
	e.mustBeGone("runtty")
}

// TestRunMustPublishPortsAndTakeAliasesOnlyWhenAsked: a one-off gets
// neither the service's published ports nor its network aliases (only its
// own name) unless --service-ports and --use-aliases ask for them.
func TestRunMustPublishPortsAndTakeAliasesOnlyWhenAsked(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`
name: runpa
services:
  client: {image: busybox, command: [sleep, '3600']}
  app:
    image: busybox
    ports: ["127.0.0.1:%d:80"]
    networks: {default: {aliases: [web-alias]}}
`, port)})
	e.downAtEnd("runpa")
	e.must("up", "-d", "client")
	serve := func(word string) []string {
		return []string{"sh", "-c", "mkdir /w; echo " + word + " > /w/index.html; exec httpd -f -p 80 -h /w"}
	}
	fetch := func(name string) string {
		return e.berth("exec", "-T", "client", "timeout", "5", "wget", "-q", "-O", "-", "http://"+name+"/").stdout
	}
	e.must(append([]string{"run", "-d", "--name", "plain", "app"}, serve("plain")...)...)
	eventually(t, 10*time.Second, func() error {
		if got := fetch("plain"); got != "plain\n" {
			return fmt.Errorf("plain by its name: %q", got)
		}
		return nil
	})
	if got := fetch("web-alias"); got != "" {
		t.Fatalf("a one-off without --use-aliases answers to the service's alias: %q", got)
	}
	if body, err := e.httpGet(fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		t.Fatalf("a one-off without --service-ports publishes the service's port: %q", body)
	}
	e.must(append([]string{"run", "-d", "--name", "asked", "--service-ports", "--use-aliases", "app"}, serve("asked")...)...)
	eventually(t, 10*time.Second, func() error {
		body, err := e.httpGet(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil || !strings.Contains(body, "asked") {
			return fmt.Errorf("--service-ports: %q %v", body, err)
		}
		for _, name := range []string{"web-alias", "app"} {
			if got := fetch(name); got != "asked\n" {
				return fmt.Errorf("--use-aliases: %s: %q", name, got)
			}
		}
		return nil
	})
	e.must("down", "-t", "1", "--remove-orphans")
	e.mustBeGone("runpa")
}
