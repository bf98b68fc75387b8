package e2e

import (
	"strings"
	"testing"
)

// TestForegroundUpMustAbortAndPassTheExitCode: --exit-code-from and
// --abort-on-container-failure stop the stack when a container exits and
// make its code berth's; --no-attach hides a service's logs.
func TestForegroundUpMustAbortAndPassTheExitCode(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: fg
services:
  srv: {image: busybox, command: [sh, -c, 'echo serving; exec sleep 3600']}
  noisy: {image: busybox, command: [sh, -c, 'echo chatter; exec sleep 3600']}
  job: {image: busybox, command: [sh, -c, 'sleep 1; echo done; exit 5'], depends_on: [srv]}
`})
	e.downAtEnd("fg")
	r := e.berth("up", "--exit-code-from", "job", "--no-attach", "noisy", "-t", "1")
	if r.code != 5 || !strings.Contains(r.stdout, "job-1  | done") || !strings.Contains(r.stdout, "job-1 exited with code 5") ||
		!strings.Contains(r.stdout, "srv-1  | serving") || strings.Contains(r.stdout, "chatter") {
		t.Fatalf("up --exit-code-from job: %+v", r)
	}
	if !strings.Contains(r.stderr, "Aborting on container exit...") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if running := e.must("ps", "-q").stdout; strings.TrimSpace(running) != "" {
		t.Fatalf("containers still running after the abort: %q", running)
	}
	r = e.berth("up", "--abort-on-container-failure", "-t", "1")
	if r.code != 5 {
		t.Fatalf("up --abort-on-container-failure: %+v", r)
	}
	if r := e.berth("up", "--exit-code-from", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such service: nope") {
		t.Fatalf("--exit-code-from an unknown service: %+v", r)
	}
	if r := e.berth("up", "-d", "--abort-on-container-exit"); r.code != 1 {
		t.Fatalf("-d with --abort-on-container-exit: %+v", r)
	}
}

// TestUpWaitMustReturnOnceServicesRunAndFailWhenOneExits: --wait returns
// when every container runs or is healthy (a job that completes for its
// dependents counts), and fails naming a container that turns unhealthy.
func TestUpWaitMustReturnOnceServicesRunAndFailWhenOneExits(t *testing.T) {
	e := newEnv(t)
	// The same project twice: as it is, then with a service that turns unhealthy.
	const project = `
name: wt
services:
  init: {image: busybox, command: ['true']}
  app:
    image: busybox
    command: [sleep, '3600']
    depends_on: {init: {condition: service_completed_successfully}}
  slow:
    image: busybox
    command: [sh, -c, 'sleep 1; touch /tmp/ok; exec sleep 3600']
    # retries: 3 would race the 1 s sleep (probes at about 0.3, 0.6 and
    # 0.9 s plus their cost): a fast start made it unhealthy.
    healthcheck: {test: [CMD-SHELL, test -f /tmp/ok], interval: 300ms, retries: 20}
`
	e.writeProject(map[string]string{"compose.yaml": project})
	e.downAtEnd("wt")
	r := e.must("up", "--wait", "--wait-timeout", "30")
	if !strings.Contains(r.stderr, "wt-app-1 Running") || !strings.Contains(r.stderr, "wt-slow-1 Healthy") {
		t.Fatalf("up --wait:\n%s", r.stderr)
	}
	e.writeProject(map[string]string{"compose.yaml": project + `  broken:
    image: busybox
    command: [sleep, '3600']
    healthcheck: {test: [CMD, 'false'], interval: 300ms, retries: 1}
`})
	r = e.berth("up", "--wait", "-t", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "wt-broken-1") || !strings.Contains(r.stderr, "unhealthy") {
		t.Fatalf("up --wait with a failing service: %+v", r)
	}
}

// TestForegroundUpMustShowTheAttachedServicesLogs: --attach shows only
// the named services' logs; up SERVICE --attach-dependencies adds those it
// depends on; --timestamps prefixes each line with its time, --no-color
// keeps colours out even with --ansi always.
func TestForegroundUpMustShowTheAttachedServicesLogs(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: fga
services:
  a: {image: busybox, command: [echo, a-line]}
  b: {image: busybox, command: [sh, -c, 'sleep 1; echo b-line'], depends_on: [a]}
  c: {image: busybox, command: [echo, c-line]}
`})
	e.downAtEnd("fga")
	r := e.must("up", "--attach", "b", "-t", "1")
	if !strings.Contains(r.stdout, "b-1  | b-line") || strings.Contains(r.stdout, "a-line") || strings.Contains(r.stdout, "c-line") {
		t.Fatalf("up --attach b:\n%s", r.stdout)
	}
	r = e.must("--ansi", "always", "up", "--attach-dependencies", "--timestamps", "--no-color", "-t", "1", "b")
	if !strings.Contains(r.stdout, "a-1  | 20") || !strings.Contains(r.stdout, " a-line") || !strings.Contains(r.stdout, "b-1  | 20") ||
		strings.Contains(r.stdout, "c-line") || strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("up --attach-dependencies --timestamps --no-color b:\n%q", r.stdout)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("fga")
}
