package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
)

// realtimeRoot is where cgroup v1's cpu controller is mounted.
var realtimeRoot = "/sys/fs/cgroup/cpu"

// defaultRealtimePeriod is the kernel's cpu.rt_period_us of a new cgroup.
const defaultRealtimePeriod = 1000000

// grantRealtime gives the cgroups above a container that asks for a
// real-time runtime (cpu_rt_runtime) the budget it needs. The kernel lets
// a cgroup's runtime be at most what its parent grants, and a new cgroup
// is granted none: without this the container's start fails with "invalid
// argument", as Docker's does unless dockerd was given --cpu-rt-runtime.
// Each ancestor is raised, from the top down, to what its other children
// already hold plus what the path to the container needs; a grant is never
// lowered (it goes with the instance's cgroup once that is empty). The shim
// does this while it holds the cgroup-parent lock (CgroupParentLock), so a
// teardown cannot remove the raised, still empty parent before the
// container's own cgroup is in it. The engine refuses the key beforehand
// where the host cannot grant it (cgroup v2, no CONFIG_RT_GROUP_SCHED).
func grantRealtime(c *cgroups.Cgroup) error {
	if c == nil || c.Resources == nil || c.Resources.CpuRtRuntime <= 0 || cgroups.IsCgroup2UnifiedMode() {
		return nil
	}
	period := int64(defaultRealtimePeriod)
	if c.Resources.CpuRtPeriod > 0 {
		period = int64(c.Resources.CpuRtPeriod)
	}
	if err := raiseRealtime(realtimeRoot, c.Path, bandwidth(period, c.Resources.CpuRtRuntime)); err != nil {
		return fmt.Errorf("cpu_rt_runtime: %w", err)
	}
	return nil
}

// bandwidth is the kernel's measure of a runtime in a period (to_ratio:
// runtime << 20 / period), which a parent's must cover its children's.
func bandwidth(period, runtime int64) int64 {
	if runtime <= 0 || period <= 0 {
		return 0
	}
	return runtime << 20 / period
}

// raiseRealtime makes every ancestor of leaf (a cgroup path under root)
// grant enough for its other children and need on leaf's path.
func raiseRealtime(root, leaf string, need int64) error {
	parts := strings.Split(strings.Trim(leaf, "/"), "/")
	if len(parts) < 2 {
		return nil // directly under the root, which the host budgets
	}
	ancestors := make([]string, len(parts)-1)
	for i := range ancestors {
		ancestors[i] = filepath.Join(append([]string{root}, parts[:i+1]...)...)
	}
	// Bottom up: what each ancestor must grant.
	needs := make([]int64, len(ancestors))
	skip := filepath.Join(root, leaf)
	for i := len(ancestors) - 1; i >= 0; i-- {
		others, err := childrenBandwidth(ancestors[i], skip)
		if err != nil {
			return err
		}
		need += others
		needs[i] = need
		skip = ancestors[i]
	}
	// Top down: a parent's grant must be there before a child's.
	for i, dir := range ancestors {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		period, runtime, err := realtimeOf(dir)
		if err != nil {
			return err
		}
		if bandwidth(period, runtime) >= needs[i] {
			continue
		}
		// The least runtime whose bandwidth covers the need.
		want := (needs[i]*period + 1<<20 - 1) >> 20
		if err := os.WriteFile(filepath.Join(dir, "cpu.rt_runtime_us"), []byte(strconv.FormatInt(want, 10)), 0o644); err != nil {
			return fmt.Errorf("no real-time budget left for it: raising %s to %d µs in %d µs: %w", dir, want, period, err)
		}
	}
	return nil
}

// childrenBandwidth sums the bandwidth granted to dir's child cgroups
// other than skip.
func childrenBandwidth(dir, skip string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, ent := range entries {
		child := filepath.Join(dir, ent.Name())
		if !ent.IsDir() || child == skip {
			continue
		}
		period, runtime, err := realtimeOf(child)
		if err != nil {
			return 0, err
		}
		sum += bandwidth(period, runtime)
	}
	return sum, nil
}

// realtimeOf reads a cgroup's real-time period and runtime.
func realtimeOf(dir string) (period, runtime int64, err error) {
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if period, err = read("cpu.rt_period_us"); err != nil {
		return 0, 0, err
	}
	runtime, err = read("cpu.rt_runtime_us")
	return period, runtime, err
}
