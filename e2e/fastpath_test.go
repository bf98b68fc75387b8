package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFrontPathMustPrintWhatBerthPrints: berth hands ps and up -d to its
// front (cmd/berth-front) before Go starts, and the front answers from the load
// cache (cmd/internal/fastpath). Every command must print, byte for byte,
// and exit as berth does itself (BERTH_NO_FRONT turns the front off): the
// table, json, -q, -a, --services, templates, warnings, errors, the shapes
// the front hands back, an up -d with work to do, and a corrupt cache
// entry or front binary, which must fall back to berth.
func TestFrontPathMustPrintWhatBerthPrints(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	// version: compose-go logs that it is obsolete (replayed from the
	// cache); cpu_count: berth's unsupported-key warning (up prints it).
	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`
version: "3.8"
name: front
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    ports: ["127.0.0.1:%d:80"]
    expose: ["8080"]
    cpu_count: 1
  worker:
    image: busybox
    command: ["sleep", "3600"]
`, port)})
	backdate(t, e.dir)
	e.downAtEnd("front")
	e.must("up", "-d")
	e.must("ps") // fills the load cache for this environment

	both := func(args ...string) result {
		t.Helper()
		var front, berth result
		for range 3 { // "Up 2 seconds" may turn 3 between two runs
			// berth first: it fills the cache entry of a new shape.
			e.environ = []string{"BERTH_NO_FRONT=1"}
			berth = e.berth(args...)
			e.environ = nil
			front = e.berth(args...)
			if front == berth {
				return front
			}
		}
		t.Errorf("berth %s differs through the front:\nfront (exit %d):\n%s%s\nberth (exit %d):\n%s%s",
			strings.Join(args, " "), front.code, front.stdout, front.stderr, berth.code, berth.stdout, berth.stderr)
		return berth
	}
	served := func(args ...string) {
		t.Helper()
		e.environ = []string{"BERTH_DEBUG=1"}
		defer func() { e.environ = nil }()
		e.must(args...) // the entry of this environment
		if r := e.must(args...); !strings.Contains(r.stderr, "front: served from the load cache") {
			t.Errorf("berth %s was not served by the front:\n%s", strings.Join(args, " "), r.stderr)
		}
	}

	if r := both("ps"); !strings.Contains(r.stdout, fmt.Sprintf("127.0.0.1:%d->80/tcp, 8080/tcp", port)) ||
		!strings.Contains(r.stderr, "version") {
		t.Errorf("ps:\n%s%s", r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"ps", "--format", "json"}, {"ps", "-q"}, {"ps", "-a"}, {"ps", "-aq"}, {"ps", "--services"},
		{"ps", "--format", "{{.Name}} {{.Ports}} {{.Status}}"}, {"ps", "--format", "table {{.ID}}\t{{.Service}}"},
		{"ps", "--no-trunc"}, {"ps", "--status", "running"}, {"ps", "--filter", "status=exited"}, {"ps", "worker"},
		{"-f", "compose.yaml", "ps"}, {"--project-directory", ".", "ps", "-a", "web"},
		// errors, and shapes the front hands back to berth
		{"ps", "nosuch"}, {"ps", "--filter", "name=x"}, {"ps", "--status", "bogus"}, {"ps", "--format", "{{.Nope"},
		{"ps", "--orphans=false"}, {"ps", "-h"}, {"--ansi", "never", "ps"},
		{"up", "-d"}, {"up", "-d", "worker"}, {"up", "--detach", "web"}, {"up", "-d", "nosuch"},
	} {
		both(args...)
	}
	if r := both("up", "-d"); !strings.Contains(r.stderr, `WARN service "web": key "cpu_count"`) || r.code != 0 {
		t.Errorf("no-op up -d: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// An up -d with work to do goes to berth, which does it.
	e.must("stop", "worker")
	for _, args := range [][]string{{"ps", "-a"}, {"ps", "--status", "exited"}, {"ps", "--services"}} {
		both(args...)
	}
	e.must("up", "-d")
	if r := e.must("ps", "--services", "--status", "running"); r.stdout != "web\nworker\n" {
		t.Errorf("up -d through the front did not start worker: %q", r.stdout)
	}

	served("ps")
	served("up", "-d")

	// A corrupt cache entry, or a front that cannot run, is berth's.
	entries, _ := filepath.Glob(filepath.Join(e.run, "cache", "load", "*"))
	if len(entries) == 0 {
		t.Fatal("no load cache entry")
	}
	for _, p := range entries {
		os.WriteFile(p, []byte("{\"Format\":"), 0o600)
	}
	both("ps")
	both("up", "-d")
	fronts, _ := filepath.Glob(filepath.Join(e.run, "helper", "*", "front"))
	if len(fronts) != 1 {
		t.Fatalf("fronts installed: %v, want one", fronts)
	}
	fi, err := os.Stat(fronts[0])
	if err != nil {
		t.Fatal(err)
	}
	replaceFront := func(content string) {
		t.Helper()
		b := []byte(content + strings.Repeat("\n", int(fi.Size())-len(content))) // same size
		if err := os.WriteFile(fronts[0]+".new", b, 0o500); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(fronts[0]+".new", fronts[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Garbage of the same size, that cannot run.
	replaceFront(strings.Repeat("x", 64))
	both("ps")
	both("up", "-d")

	// A front that runs but is not the one berth installed (its stamp
	// differs) is never run: the first command after it is berth's (and
	// berth installs the front again).
	e.environ = []string{"BERTH_NO_FRONT=1"}
	want := e.must("ps", "-q")
	e.environ = nil
	replaceFront("#!/bin/sh\necho not berth; exit 3\n")
	if r := e.berth("ps", "-q"); r.code != 0 || r.stdout != want.stdout {
		t.Errorf("ps -q with a replaced front: exit %d\n%s%s\nwant:\n%s", r.code, r.stdout, r.stderr, want.stdout)
	}
	served("ps")
}
