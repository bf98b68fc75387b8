package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine"
)

// TestStopsRacingStartsMustNeverHang runs start, stop, kill, pause,
// unpause and restart of one service at once, over and over, each bounded
// by a deadline: a verb that does not return in time is a hang (the
// "Stopping" that never ended, a shim waiting on an init that cannot
// exit). Errors are allowed (stopping a stopped container, pausing one
// that is starting); hangs and leftovers are not. A short run in the
// suite; BERTH_STRESS_ROUNDS=N runs N rounds by hand.
func TestStopsRacingStartsMustNeverHang(t *testing.T) {
	rounds := stressRounds(6)
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: race
services:
  s:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"]
    healthcheck: {test: ["CMD", "true"], interval: 100ms, start_period: 0s, start_interval: 50ms}
`})
	e.downAtEnd("race")
	e.must("up", "-d")
	verbs := [][]string{
		{"start"}, {"stop", "-t", "0"}, {"kill"}, {"pause"}, {"unpause"},
		{"restart", "-t", "0"}, {"up", "-d"}, {"stop", "-t", "1"},
	}
	for round := range rounds {
		var wg sync.WaitGroup
		hangs := make(chan error, len(verbs))
		for i := range verbs {
			// Each round runs every verb once, in a rotated order, all
			// at once.
			args := verbs[(i+round)%len(verbs)]
			wg.Go(func() {
				if err := runWithin(e, stressDeadline, args...); err != nil {
					hangs <- err
				}
			})
		}
		wg.Wait()
		close(hangs)
		for err := range hangs {
			t.Errorf("round %d: %v", round, err)
		}
		if t.Failed() {
			return
		}
	}
	if err := runWithin(e, stressDeadline, "down", "-t", "0"); err != nil {
		t.Fatal(err)
	}
	e.mustBeGone("race")
}

// stressDeadline bounds each verb of the stress tests: they take
// milliseconds, seconds on a loaded machine; more is a hang.
const stressDeadline = 20 * time.Second

// stressRounds is $BERTH_STRESS_ROUNDS, or def.
func stressRounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_STRESS_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}

// runWithin runs a berth command and fails only if it does not return
// within d: then with what its shims wait on, after thawing the env's
// containers so the test's cleanup can end them.
func runWithin(e *env, d time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, _ := e.cmd(ctx, args...).CombinedOutput()
	if ctx.Err() == nil {
		return nil
	}
	err := fmt.Errorf("%s did not return in %s:\n%s\n%s", strings.Join(args, " "), d, out, shimTree(e))
	thaw(e)
	return err
}

// shimTree describes each shim of the env and its children, with their
// states: what a hang waits on.
func shimTree(e *env) string {
	var b strings.Builder
	pids, _ := filepath.Glob(filepath.Join(e.run, "containers", "*", "shim.pid"))
	for _, p := range pids {
		raw, _ := os.ReadFile(p)
		pid := strings.TrimSpace(string(raw))
		fmt.Fprintf(&b, "shim %s: %s", pid, procLine(pid))
		kids, _ := filepath.Glob("/proc/" + pid + "/task/*/children")
		for _, k := range kids {
			c, _ := os.ReadFile(k)
			for _, kid := range strings.Fields(string(c)) {
				fmt.Fprintf(&b, "  child %s: %s", kid, procLine(kid))
			}
		}
		st, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "..", "..", "..", "root", "containers", filepath.Base(filepath.Dir(p)), "status.json"))
		fmt.Fprintf(&b, "  status: %s\n", st)
		stack, _ := os.ReadFile("/proc/" + pid + "/stack")
		fmt.Fprintf(&b, "  kernel stack:\n%s", stack)
	}
	return b.String()
}

// thaw thaws every container cgroup of the env.
func thaw(e *env) {
	states, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/freezer", engine.Instance(e.root), "*", "freezer.state"))
	for _, p := range states {
		_ = os.WriteFile(p, []byte("THAWED"), 0)
	}
}

// procLine is a process's name and state from /proc/PID/status.
func procLine(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "gone\n"
	}
	var name, state string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Name:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "State:"); ok {
			state = strings.TrimSpace(v)
		}
	}
	return name + " " + state + "\n"
}

// TestPausesRacingProbesAndExecsMustNeverHang pauses and unpauses a
// container over and over while its healthcheck probes run every 10 ms
// and execs run beside: a probe or exec that passed its "not paused"
// check just before a pause must not leave its process frozen with the
// container's lock held (then unpause, stop and down wait forever).
func TestPausesRacingProbesAndExecsMustNeverHang(t *testing.T) {
	rounds := stressRounds(40)
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: pauses
services:
  s:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"]
    healthcheck: {test: ["CMD", "true"], interval: 10ms, timeout: 30s}
`})
	e.downAtEnd("pauses")
	e.must("up", "-d")
	run := func(args ...string) error { return runWithin(e, stressDeadline, args...) }
	done := make(chan struct{})
	execs := make(chan error, 1)
	go func() {
		defer close(execs)
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := run("exec", "-T", "s", "true"); err != nil {
				execs <- err
				return
			}
		}
	}()
	for range rounds {
		if err := run("pause"); err != nil {
			t.Error(err)
			break
		}
		if err := run("unpause"); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	if err := <-execs; err != nil {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if err := run("down", "-t", "0"); err != nil {
		t.Fatal(err)
	}
	e.mustBeGone("pauses")
}
