package container

// Security is how a container is confined beyond, or below, Docker's
// defaults: the per-container security keys of Docker and Compose. The zero
// value is Docker's default confinement. Field names follow Compose's keys,
// so a record reads like the service that made it.
type Security struct {
	GroupAdd     []string `json:"group_add,omitempty"`     // names or IDs, resolved in the image
	CapAdd       []string `json:"cap_add,omitempty"`       // "CAP_X" names or "ALL"
	CapDrop      []string `json:"cap_drop,omitempty"`      // "CAP_X" names or "ALL"
	Privileged   bool     `json:"privileged,omitempty"`    // every capability and host device, no seccomp, writable /sys
	ReadOnly     bool     `json:"read_only,omitempty"`     // read-only root filesystem
	Init         bool     `json:"init,omitempty"`          // a minimal init as PID 1 reaps zombies and forwards signals
	Ipc          string   `json:"ipc,omitempty"`           // "" or "private", "shareable", "host", "none", "container:NAME"
	Pid          string   `json:"pid,omitempty"`           // "" or "host", "container:NAME"
	Uts          string   `json:"uts,omitempty"`           // "" or "host"
	Cgroup       string   `json:"cgroup,omitempty"`        // "" (the host's default), "host" or "private" cgroup namespace
	CgroupParent string   `json:"cgroup_parent,omitempty"` // a cgroup path the container's cgroup goes under
	OomScoreAdj  *int     `json:"oom_score_adj,omitempty"`
	ShmSize      int64    `json:"shm_size,omitempty"` // bytes of /dev/shm; 0 means Docker's 64 MiB

	NoNewPrivileges bool     `json:"no_new_privileges,omitempty"`
	Seccomp         string   `json:"seccomp,omitempty"`     // "" Docker's profile, "unconfined", or a profile in Docker's JSON format
	AppArmor        string   `json:"apparmor,omitempty"`    // a loaded profile's name, or "unconfined"
	Label           []string `json:"label,omitempty"`       // SELinux: "disable" or "user:U", "role:R", "type:T", "level:L"
	SystemPaths     string   `json:"systempaths,omitempty"` // "unconfined": /proc and /sys paths are not masked

	Tmpfs             []Tmpfs           `json:"tmpfs,omitempty"`
	Devices           []Device          `json:"devices,omitempty"`
	DeviceCgroupRules []string          `json:"device_cgroup_rules,omitempty"` // "c 1:3 rwm" as in Docker
	Sysctls           map[string]string `json:"sysctls,omitempty"`             // namespaced ones only
	Ulimits           []Ulimit          `json:"ulimits,omitempty"`
}

// Tmpfs is a tmpfs mounted in the container.
type Tmpfs struct {
	Target  string   `json:"target"`
	Options []string `json:"options,omitempty"` // mount options: size=, mode=, noexec, ...
}

// Device makes a host device node available in the container.
type Device struct {
	Source      string `json:"source"`                // host path
	Target      string `json:"target"`                // path in the container
	Permissions string `json:"permissions,omitempty"` // some of "rwm"; empty means "rwm"
}

// Ulimit is one resource limit of the container's processes.
type Ulimit struct {
	Name string `json:"name"` // "nofile", "nproc", ... as in Docker
	Soft int64  `json:"soft"` // -1 is unlimited
	Hard int64  `json:"hard"`
}

// Resources are the container's cgroup limits, in Docker's units. Zero
// means unset (no limit) for every field.
type Resources struct {
	Memory             int64  `json:"memory,omitempty"`             // bytes
	MemorySwap         int64  `json:"memory_swap,omitempty"`        // bytes of memory plus swap; -1 unlimited
	MemoryReservation  int64  `json:"memory_reservation,omitempty"` // bytes, a soft limit
	MemorySwappiness   *int64 `json:"memory_swappiness,omitempty"`  // 0 to 100
	OomKillDisable     bool   `json:"oom_kill_disable,omitempty"`
	NanoCPUs           int64  `json:"nano_cpus,omitempty"`  // CPUs × 1e9
	CPUShares          int64  `json:"cpu_shares,omitempty"` // relative weight, Docker's default 1024
	CPUQuota           int64  `json:"cpu_quota,omitempty"`  // µs per period
	CPUPeriod          int64  `json:"cpu_period,omitempty"` // µs
	CPURealtimeRuntime int64  `json:"cpu_rt_runtime,omitempty"`
	CPURealtimePeriod  int64  `json:"cpu_rt_period,omitempty"`
	CpusetCpus         string `json:"cpuset,omitempty"`     // "0-2,4"
	PidsLimit          int64  `json:"pids_limit,omitempty"` // -1 unlimited

	BlkioWeight          uint16           `json:"blkio_weight,omitempty"` // 10 to 1000
	BlkioWeightDevice    []WeightDevice   `json:"blkio_weight_device,omitempty"`
	BlkioDeviceReadBps   []ThrottleDevice `json:"blkio_device_read_bps,omitempty"`
	BlkioDeviceWriteBps  []ThrottleDevice `json:"blkio_device_write_bps,omitempty"`
	BlkioDeviceReadIOps  []ThrottleDevice `json:"blkio_device_read_iops,omitempty"`
	BlkioDeviceWriteIOps []ThrottleDevice `json:"blkio_device_write_iops,omitempty"`
}

// WeightDevice is a block IO weight for one host block device.
type WeightDevice struct {
	Path   string `json:"path"`
	Weight uint16 `json:"weight"`
}

// ThrottleDevice is a block IO rate limit for one host block device.
type ThrottleDevice struct {
	Path string `json:"path"`
	Rate uint64 `json:"rate"` // bytes or operations per second
}
