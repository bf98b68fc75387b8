package hostside

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine/container"
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

// TestCleanupMustRemoveTheCgroupsOfAContainerNoOneKnows: a shim killed
// while libcontainer made the container leaves its cgroup, with the
// container's processes (here frozen, as a paused container's), and no
// state to destroy it by. The next teardown kills them and removes the
// cgroup in every hierarchy, then the emptied parent; a cgroup_parent
// given in the start's spec is honoured.
func TestCleanupMustRemoveTheCgroupsOfAContainerNoOneKnows(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, ctl := range []string{"pids", "freezer"} {
		if _, err := os.Stat(filepath.Join(cgroupRoot, ctl)); err != nil {
			t.Skip("no cgroup v1 pids and freezer hierarchies")
		}
	}
	for _, custom := range []bool{false, true} {
		run := t.TempDir()
		h := &Host{run: run, instance: fmt.Sprintf("berth-test%d", os.Getpid())}
		id := fmt.Sprintf("%064x", os.Getpid())
		leaf := h.CgroupParent() + "/" + id
		if custom {
			leaf = fmt.Sprintf("/berth-testparent%d/%s", os.Getpid(), id)
			if err := os.MkdirAll(h.RunDir(id), 0o700); err != nil {
				t.Fatal(err)
			}
			spec := `{"linux":{"cgroupsPath":"` + leaf + `"}}`
			if err := os.WriteFile(filepath.Join(h.RunDir(id), "config.json"), []byte(spec), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var dirs []string
		for _, ctl := range []string{"pids", "freezer"} {
			d := filepath.Join(cgroupRoot, ctl, leaf)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, d, filepath.Dir(d))
		}
		t.Cleanup(func() {
			for _, d := range dirs {
				os.Remove(d)
			}
		})
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, ctl := range []string{"pids", "freezer"} {
			if err := os.WriteFile(filepath.Join(cgroupRoot, ctl, leaf, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(cgroupRoot, "freezer", leaf, "freezer.state"), []byte("FROZEN"), 0); err != nil {
			t.Fatal(err)
		}
		if err := h.removeCgroups(id); err != nil {
			t.Fatalf("custom parent %v: %v", custom, err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("the process in the cgroup was not killed: %v", err)
		}
		for _, ctl := range []string{"pids", "freezer"} {
			if _, err := os.Stat(filepath.Join(cgroupRoot, ctl, leaf)); !os.IsNotExist(err) {
				t.Fatalf("custom parent %v: %s cgroup left: %v", custom, ctl, err)
			}
		}
		if !custom {
			h.removeCgroupParent()
			if _, err := os.Stat(filepath.Join(cgroupRoot, "pids", h.CgroupParent())); !os.IsNotExist(err) {
				t.Fatalf("parent cgroup left: %v", err)
			}
		}
	}
}

// TestCgroupsPathMustBeTheContainers: a spec whose cgroup is not the
// container's own is refused, so a teardown never kills or removes
// another cgroup.
func TestCgroupsPathMustBeTheContainers(t *testing.T) {
	run := t.TempDir()
	h := &Host{run: run, instance: "berth-x"}
	id := strings.Repeat("a", 64)
	if got, err := h.cgroupsPath(id); err != nil || got != "/berth-x/"+id {
		t.Fatalf("no spec: %q, %v", got, err)
	}
	// A container's start writes no spec: its record gives the cgroup_parent.
	store, err := container.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.Containers = store
	rec := `{"id":"` + id + `","name":"c","config":{"security":{"cgroup_parent":"/custom/"}}}`
	os.MkdirAll(store.Dir(id), 0o700)
	if err := os.WriteFile(filepath.Join(store.Dir(id), "container.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := h.cgroupsPath(id); err != nil || got != "/custom/"+id {
		t.Fatalf("no spec, a record with a cgroup_parent: %q, %v; want /custom/%s", got, err, id)
	}
	h.Containers = nil
	os.MkdirAll(h.RunDir(id), 0o700)
	for spec, ok := range map[string]bool{
		`{"linux":{"cgroupsPath":"/p/` + id + `"}}`:  true,
		`{"linux":{"cgroupsPath":"/user.slice"}}`:    false,
		`{"linux":{"cgroupsPath":"/` + id + `/.."}}`: false,
	} {
		os.WriteFile(filepath.Join(h.RunDir(id), "config.json"), []byte(spec), 0o600)
		if _, err := h.cgroupsPath(id); (err == nil) != ok {
			t.Errorf("%s: %v", spec, err)
		}
	}
}
