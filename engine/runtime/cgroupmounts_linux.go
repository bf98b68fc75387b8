package runtime

// The host's cgroup v1 mounts, read once by the spawner.
//
// libcontainer's cgroup v1 manager finds each controller's mount point as
// it creates a container. It tries /sys/fs/cgroup/<controller> first, but
// reads the whole mount table (/proc/thread-self/mountinfo, the kernel
// printing every mount of the namespace) when /sys/fs/cgroup's first entry
// is not a v1 hierarchy (on a hybrid host it is often "unified") or a
// controller is not mounted there (net_cls, perf_event, rdma, misc on many
// hosts): about 0.5 ms of CPU in every shim (docs/performance.md). The
// spawner, one process for all the starts of a command, reads the cgroup
// mounts once (again after two seconds, in a long-lived command) and hands
// them to each shim in its configuration; the shim
// puts them in libcontainer's cache of the mount table before it creates
// the container, so the manager finds the same mount points without the
// read. Nothing is handed on cgroup v2 (its manager reads no mount table)
// or when the spawner could not read them (the shim reads them then, as
// libcontainer always did).

import (
	"sync"
	"time"
	_ "unsafe" // go:linkname, for libcontainer's cache of the mount table

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
)

// CgroupMount is one cgroup v1 hierarchy's mount, as the spawner read it.
type CgroupMount struct {
	Mountpoint string `json:"mountpoint"`
	Root       string `json:"root,omitempty"`
	// Options are the mount's super options: its controllers and name=.
	Options string `json:"options"`
}

// The cache of the cgroup v1 mount table in opencontainers/cgroups
// (v1_utils.go: readCgroupMountinfo fills it once per process). A test
// checks that these still name it (TestCgroupMountsMustReachLibcontainer).
//
//go:linkname cgroupMountinfo github.com/opencontainers/cgroups.cgroupMountinfo
var cgroupMountinfo []*mountinfo.Info

//go:linkname readMountinfoOnce github.com/opencontainers/cgroups.readMountinfoOnce
var readMountinfoOnce sync.Once

// hostCgroupMounts are the cgroup v1 mounts of the spawner's mount
// namespace (a shim's: Spawn starts it in the same); nil on cgroup v2 or
// when they cannot be read. Read again when the last read is older than
// cgroupMountsTTL, so a long-lived command (up with watch) never hands on
// a table from before the host mounted or unmounted a hierarchy.
func hostCgroupMounts() []CgroupMount {
	cgroupMountsCache.Lock()
	defer cgroupMountsCache.Unlock()
	if c := &cgroupMountsCache; c.read.IsZero() || time.Since(c.read) > cgroupMountsTTL {
		c.mounts, c.read = readCgroupMounts(), time.Now()
	}
	return cgroupMountsCache.mounts
}

const cgroupMountsTTL = 2 * time.Second

var cgroupMountsCache struct {
	sync.Mutex
	read   time.Time
	mounts []CgroupMount
}

func readCgroupMounts() []CgroupMount {
	if cgroups.IsCgroup2UnifiedMode() {
		return nil
	}
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil || len(infos) == 0 {
		return nil
	}
	out := make([]CgroupMount, 0, len(infos))
	for _, mi := range infos {
		out = append(out, CgroupMount{Mountpoint: mi.Mountpoint, Root: mi.Root, Options: mi.VFSOptions})
	}
	return out
}

// useCgroupMounts gives libcontainer the cgroup mounts the spawner read,
// unless it has read the mount table already; it reports whether it did.
// Before any container is created: libcontainer keeps the first table for
// the life of the process.
func useCgroupMounts(mounts []CgroupMount) bool {
	if len(mounts) == 0 {
		return false
	}
	used := false
	readMountinfoOnce.Do(func() {
		infos := make([]*mountinfo.Info, 0, len(mounts))
		for _, m := range mounts {
			infos = append(infos, &mountinfo.Info{
				Mountpoint: m.Mountpoint, Root: m.Root, FSType: "cgroup", VFSOptions: m.Options,
			})
		}
		cgroupMountinfo = infos
		used = true
	})
	return used
}
