package e2e

import (
	"fmt"
	"strings"
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
