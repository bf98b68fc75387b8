package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/crashpoint"
)

const twoServices = `
name: left
services:
  a: {image: busybox, command: ["sleep", "3600"]}
  b: {image: busybox, command: ["sleep", "3600"]}
`

// TestCommandKilledInACreateOrRemovalMustLeaveNothingTheNextOneKeeps
// kills up (in a container's create: its record staged, or just in place)
// and down (in a removal) with SIGKILL at that point; the next command
// (ps, up, down) lists whole containers only, the next up runs them all,
// and after down nothing is left, in the container store either.
func TestCommandKilledInACreateOrRemovalMustLeaveNothingTheNextOneKeeps(t *testing.T) {
	for _, tc := range []struct{ point, verb string }{
		{"container-staged", "up"},
		{"container-committed", "up"},
		{"container-removing", "down"},
	} {
		t.Run(tc.point, func(t *testing.T) {
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": twoServices})
			e.downAtEnd("left")
			args := []string{"up", "-d"}
			if tc.verb == "down" {
				e.must("up", "-d")
				args = []string{"down", "-t", "0"}
			}
			c := e.cmd(context.Background(), args...)
			c.Env = append(c.Env, crashpoint.Env+"="+tc.point)
			out, err := c.CombinedOutput()
			if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); err == nil || !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("%s was not killed at %s: %v\n%s", tc.verb, tc.point, err, out)
			}
			if tc.point == "container-removing" {
				if left := storeLeftovers(t, e); len(left) == 0 {
					t.Fatal("the crash left nothing to clean: the test tests nothing")
				}
			}
			ids := strings.Fields(e.must("ps", "-a", "-q", "--no-trunc").stdout)
			if left := storeLeftovers(t, e); len(left) != len(ids) {
				t.Fatalf("after ps: %d containers but %v in the store", len(ids), left)
			}
			e.must("up", "-d")
			ps := e.must("ps", "--format", "json").stdout
			if n := strings.Count(ps, `"State":"running"`); n != 2 {
				t.Fatalf("%d running after repair:\n%s", n, ps)
			}
			e.must("down", "-t", "0")
			e.mustBeGone("left")
			if left := storeLeftovers(t, e); len(left) != 0 {
				t.Fatalf("left in the container store: %v", left)
			}
		})
	}
}

// storeLeftovers lists the container store's entries but its lock.
func storeLeftovers(t *testing.T, e *env) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.root, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		if d.Name() != ".lock" {
			out = append(out, d.Name())
		}
	}
	return out
}

// TestDownMustCleanAContainerWhoseShimAndStateAreLost: a shim killed
// while libcontainer made the container leaves the container's cgroups
// and processes with no state to destroy them by (simulated: the shim
// killed, libcontainer's state removed). down must kill what is left and
// remove the cgroups; the suite's leak check sees the cgroup otherwise.
func TestDownMustCleanAContainerWhoseShimAndStateAreLost(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": twoServices})
	e.downAtEnd("left")
	e.must("up", "-d")
	id := strings.TrimSpace(e.must("ps", "-q", "--no-trunc", "a").stdout)
	b, err := os.ReadFile(filepath.Join(e.run, "containers", id, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.run, "runc", id)); err != nil {
		t.Fatal(err)
	}
	e.must("down", "-t", "0")
	e.mustBeGone("left")
}
