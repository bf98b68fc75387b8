package hostside

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/lockfile"
)

// TestEmptiedCgroupParentMustStayWhileAStartMakesItsCgroups: a teardown
// removes the instance's parent cgroup once it is empty, but a start that
// has the parent and not yet its own leaf holds the lock shared; removing
// the parent then failed that start ("mkdir .../berth-x/<id>: no such
// file or directory").
func TestEmptiedCgroupParentMustStayWhileAStartMakesItsCgroups(t *testing.T) {
	const ctl = "/sys/fs/cgroup/pids"
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(ctl); err != nil {
		t.Skip("no cgroup v1 pids hierarchy")
	}
	run := t.TempDir()
	h := &Host{run: run, instance: fmt.Sprintf("berth-test%d", os.Getpid())}
	dir := filepath.Join(ctl, h.instance)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })

	start, err := lockfile.AcquireShared(context.Background(), runtime.CgroupParentLock(filepath.Join(run, "runc")))
	if err != nil {
		t.Fatal(err)
	}
	h.removeCgroupParent()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("parent removed under a start: %v", err)
	}
	start.Unlock()
	h.removeCgroupParent()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("emptied parent kept once no start runs: %v", err)
	}
}
