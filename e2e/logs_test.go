package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogsFollowMustJoinContainersThatStartLater: logs -f shows the
// containers that start while it runs (a scale-up, a restart, a
// recreate), each line once, and ends by itself once every container it
// follows has stopped.
func TestLogsFollowMustJoinContainersThatStartLater(t *testing.T) {
	e := newEnv(t)
	project := func(greeting string) map[string]string {
		return map[string]string{"compose.yaml": `
name: lf
services:
  web: {image: busybox, command: [sh, -c, 'echo start $$HOSTNAME $$GREETING; exec sleep 3600'], environment: {GREETING: ` + greeting + `}}
  keep: {image: busybox, command: [sh, -c, 'echo keep; exec sleep 3600']}
`}
	}
	e.writeProject(project("v1"))
	e.downAtEnd("lf")
	e.must("up", "-d")

	var out lockedBuffer
	c := e.cmd(t.Context(), "logs", "-f", "--no-color")
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	lines := func(prefix, text string) int {
		n := 0
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, text) {
				n++
			}
		}
		return n
	}
	waitLines := func(prefix, text string, n int) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			if got := lines(prefix, text); got != n {
				return fmt.Errorf("%d lines %q ... %q, want %d:\n%s", got, prefix, text, n, out.String())
			}
			return nil
		})
	}
	// The lines there are: logs -f watches from here on.
	waitLines("web-1   | start", "v1", 1)
	waitLines("keep-1  | keep", "", 1)

	e.must("up", "-d", "--scale", "web=2")
	waitLines("web-2   | start", "v1", 1)

	e.must("restart", "-t", "1", "web")
	waitLines("web-1   | start", "v1", 2)
	waitLines("web-2   | start", "v1", 2)

	e.writeProject(project("v2"))
	e.must("up", "-d", "-t", "1", "--scale", "web=2")
	waitLines("web-1   | start", "v2", 1)
	waitLines("web-2   | start", "v2", 1)
	if n := lines("keep-1  |", "keep"); n != 1 {
		t.Fatalf("keep's line shown %d times:\n%s", n, out.String())
	}

	e.must("down", "-t", "1")
	if code := exitCodeOf(t, c); code != 0 {
		t.Fatalf("logs -f after down: exit %d\n%s", code, out.String())
	}
	e.mustBeGone("lf")
}

// TestLogsMustSelectByTimeAndReplica: --since and --until (times as
// logs -t prints them, and durations) bound the lines shown; --index
// shows one replica.
func TestLogsMustSelectByTimeAndReplica(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: lsel
services:
  w: {image: busybox, command: [sh, -c, 'echo first; sleep 1; echo second; exec sleep 3600'], scale: 2}
`})
	e.downAtEnd("lsel")
	e.must("up", "-d")
	eventually(t, 20*time.Second, func() error {
		if out := e.must("logs", "--no-color").stdout; strings.Count(out, "second") != 2 {
			return fmt.Errorf("logs: %q", out)
		}
		return nil
	})
	r := e.must("logs", "--no-color", "--index", "2")
	if r.stdout != "w-2  | first\nw-2  | second\n" {
		t.Fatalf("logs --index 2: %q", r.stdout)
	}
	// Timestamps of w-1's lines, as logs -t shows them.
	stamps := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(e.must("logs", "-t", "--no-log-prefix", "--index", "1").stdout), "\n") {
		ts, text, _ := strings.Cut(l, " ")
		stamps[text] = ts
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", stamps["second"]}, "second\n"},
		{[]string{"--until", stamps["first"]}, "first\n"},
		{[]string{"--since", "1h"}, "first\nsecond\n"},
		{[]string{"--until", "1h"}, ""},
	} {
		args := append([]string{"logs", "--no-log-prefix", "--index", "1"}, tc.args...)
		if r := e.must(args...); r.stdout != tc.want {
			t.Errorf("logs %v: %q, want %q", tc.args, r.stdout, tc.want)
		}
	}
	if r := e.berth("logs", "--since", "yesterday"); r.code != 1 || !strings.Contains(r.stderr, `--since "yesterday"`) {
		t.Fatalf("logs --since yesterday: %+v", r)
	}
	// Following with --until ends then.
	if r := e.must("logs", "-f", "--until", "1s"); strings.Count(r.stdout, "first") != 2 {
		t.Fatalf("logs -f --until 1s: %+v", r)
	}
	// Ctrl-C ends logs -f with 130, as Compose.
	var out lockedBuffer
	c := e.cmd(t.Context(), "logs", "-f", "--no-color")
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if strings.Count(out.String(), "second") != 2 {
			return fmt.Errorf("logs -f: %q", out.String())
		}
		return nil
	})
	c.Process.Signal(syscall.SIGINT)
	if code := exitCodeOf(t, c); code != 130 {
		t.Fatalf("logs -f after Ctrl-C: exit %d\n%s", code, out.String())
	}
}
