package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// cgroupPaths are the v1 controllers' paths libcontainer's manager gives a
// container cgroup, with the mount table it reads or was given.
func cgroupPaths(t *testing.T) map[string]string {
	t.Helper()
	m, err := manager.New(&cgroups.Cgroup{Path: "/berth-cgroup-mounts-test/c1", Resources: &cgroups.Resources{}})
	if err != nil {
		t.Fatal(err)
	}
	return m.GetPaths()
}

// TestCgroupMountsMustReachLibcontainer: the cgroup mounts the spawner
// hands a shim are the table libcontainer's v1 manager uses, so the shim
// never reads the mount table (about 0.5 ms a start). Each case runs in a
// child process: libcontainer keeps the first table it has for the life of
// the process.
func TestCgroupMountsMustReachLibcontainer(t *testing.T) {
	switch os.Getenv("BERTH_TEST_CGROUP_MOUNTS") {
	case "fake":
		// A table unlike the host's: what libcontainer then finds comes
		// from it (fails if the linkname no longer names its cache).
		if !useCgroupMounts([]CgroupMount{{Mountpoint: "/nowhere/cgroup/net_cls,net_prio", Root: "/", Options: "rw,net_cls,net_prio"}}) {
			t.Fatal("the mount table was read before")
		}
		mnt, root, err := cgroups.FindCgroupMountpointAndRoot("/nowhere/cgroup", "net_prio")
		if err != nil || mnt != "/nowhere/cgroup/net_cls,net_prio" || root != "/" {
			t.Errorf("libcontainer found %q, %q, %v: not the table it was given", mnt, root, err)
		}
		return
	case "host":
		// The host's table as the spawner reads it gives the container's
		// cgroups the paths libcontainer's own read gives them.
		if !useCgroupMounts(hostCgroupMounts()) {
			t.Fatal("the host's cgroup mounts were not used")
		}
		fmt.Printf("PATHS %v\n", cgroupPaths(t))
		return
	}
	if cgroups.IsCgroup2UnifiedMode() {
		// cgroup v2's manager reads no mount table: nothing is handed on.
		if m := hostCgroupMounts(); m != nil {
			t.Errorf("cgroup v2 host: mounts %v handed to the shim", m)
		}
		t.Skip("cgroup v2 host: no v1 mounts to hand on")
	}
	if len(hostCgroupMounts()) == 0 {
		t.Fatal("cgroup v1 host, and no cgroup mounts read")
	}
	child := func(mode string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCgroupMountsMustReachLibcontainer$", "-test.v")
		cmd.Env = append(os.Environ(), "BERTH_TEST_CGROUP_MOUNTS="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		return string(out)
	}
	child("fake")
	own := fmt.Sprintf("PATHS %v\n", cgroupPaths(t))
	if out := child("host"); !slices.Contains(strings.Split(out, "\n"), strings.TrimSpace(own)) {
		t.Errorf("with the spawner's table:\n%s\nwith libcontainer's own read:\n%s", out, own)
	}
}
