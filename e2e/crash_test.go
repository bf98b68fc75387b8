package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const fiveServices = `
name: crash
services:
  s1: {image: busybox, command: ["sleep", "3600"]}
  s2: {image: busybox, command: ["sleep", "3600"], depends_on: [s1]}
  s3: {image: busybox, command: ["sleep", "3600"], depends_on: [s1]}
  s4: {image: busybox, command: ["sleep", "3600"], depends_on: [s2]}
  s5: {image: busybox, command: ["sleep", "3600"], depends_on: [s4]}
`

// TestKilledUpMustBeRepairedByTheNextCommand kills berth up at several
// points and checks that the next up completes and down removes everything.
func TestKilledUpMustBeRepairedByTheNextCommand(t *testing.T) {
	for _, delay := range []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": fiveServices})
			e.downAtEnd("crash")
			c := e.cmd(context.Background(), "up", "-d")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()

			e.must("up", "-d")
			ps := e.must("ps", "--format", "json").stdout
			if n := strings.Count(ps, `"State":"running"`); n != 5 {
				t.Fatalf("%d running after repair:\n%s", n, ps)
			}
			e.must("down", "-t", "1")
			e.mustBeGone("crash")
		})
	}
}

// TestDownAfterAKilledUpMustRemoveEverything kills berth up and runs down
// at once, while shims it spawned may still be starting containers.
func TestDownAfterAKilledUpMustRemoveEverything(t *testing.T) {
	for _, delay := range []time.Duration{30 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": fiveServices})
			c := e.cmd(context.Background(), "up", "-d")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()

			e.must("down", "-t", "1")
			e.mustBeGone("crash")
		})
	}
}

// TestForegroundUpMustStreamPrefixedLogsAndStopOnCtrlC runs up attached,
// reads prefixed log lines, then interrupts it like Ctrl-C.
func TestForegroundUpMustStreamPrefixedLogsAndStopOnCtrlC(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: fg
services:
  talker:
    image: busybox
    command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]
`})
	e.downAtEnd("fg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.cmd(ctx, "up")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "tick") {
				found <- sc.Text()
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case line := <-found:
		if line != "talker-1  | tick" {
			t.Errorf("log line %q, want %q (no colour when not a terminal)", line, "talker-1  | tick")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no log line within 30 s")
	}
	c.Process.Signal(syscall.SIGINT)
	err = c.Wait()
	if c.ProcessState.ExitCode() != 130 {
		t.Errorf("up exit code %d (%v), want 130 after Ctrl-C", c.ProcessState.ExitCode(), err)
	}
	ps := e.must("ps", "-a", "--format", "json").stdout
	if !strings.Contains(ps, `"State":"exited"`) {
		t.Fatalf("container not stopped after Ctrl-C:\n%s", ps)
	}
	_ = fmt.Sprint
}

// TestContainerWhoseCleanupFailsMustShowDeadUntilRepaired loses a shim
// while its container's run directory cannot change (immutable), so the
// recovery's cleanup fails: ps lists the container as Dead (as Docker
// does) without failing, --status dead finds it, and once the directory
// can change, start repairs and starts it and down removes everything.
func TestContainerWhoseCleanupFailsMustShowDeadUntilRepaired(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: dead\nservices:\n  s: {image: busybox, command: [sleep, '3600']}\n"})
	e.downAtEnd("dead")
	e.must("up", "-d")
	dir := filepath.Join(e.run, "containers", containerID(t, e, "s"))
	pid, err := os.ReadFile(filepath.Join(dir, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v %s", dir, err, out)
	}
	// Runs before downAtEnd's down (cleanups run last first).
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })

	if ps := e.must("ps", "-a").stdout; !strings.Contains(ps, " Dead ") {
		t.Fatalf("ps -a after a failed cleanup:\n%s", ps)
	}
	if r := e.must("ps", "-a", "--status", "dead", "--format", "json").stdout; !strings.Contains(r, `"State":"dead"`) || !strings.Contains(r, `"Status":"Dead"`) {
		t.Fatalf("ps --status dead: %s", r)
	}
	if r := e.berth("exec", "-T", "s", "true"); r.code == 0 {
		t.Fatalf("exec in a dead container succeeded")
	}
	if r := e.berth("start"); r.code == 0 {
		t.Fatalf("start succeeded while the cleanup still fails")
	}
	if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	e.must("start")
	if r := e.must("ps", "--format", "json").stdout; !strings.Contains(r, `"State":"running"`) {
		t.Fatalf("after the repair: %s", r)
	}
	e.must("down", "-t", "0")
	e.mustBeGone("dead")
}
