package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"

	"github.com/berth-dev/berth/engine/container"
)

// cpuCgroupRoot is where cgroup v1's cpu controller is mounted.
var cpuCgroupRoot = "/sys/fs/cgroup/cpu"

// checkRealtime refuses cpu_rt_runtime, before anything is made, where the
// host cannot grant a cgroup a real-time budget. The budget itself is
// granted by the container's shim, under the lock that keeps a teardown
// from removing the parent cgroup meanwhile (runtime's grantRealtime).
func checkRealtime(c container.Container) error {
	if c.Config.Resources.CPURealtimeRuntime <= 0 {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("container %s: cpu_rt_runtime: %w", c.Name, err)
	}
	if cgroups.IsCgroup2UnifiedMode() {
		return fail(fmt.Errorf("cgroup v2 has no real-time budgets per cgroup: %w", errdefs.ErrFailedPrecondition))
	}
	if _, err := os.Stat(filepath.Join(cpuCgroupRoot, "cpu.rt_runtime_us")); err != nil {
		return fail(fmt.Errorf("this kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED): %w", errdefs.ErrFailedPrecondition))
	}
	return nil
}
