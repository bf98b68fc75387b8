package compose

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/files"
	"github.com/berth-dev/berth/engine/container"
)

// loadService loads a one-file project and maps its service "web".
func loadService(t *testing.T, yaml string, extra map[string]string) (container.Config, error) {
	t.Helper()
	clearComposeEnv(t)
	dir := t.TempDir()
	extra["compose.yaml"] = yaml
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := testLoad(t.Context(), files.Options{WorkingDir: dir})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return containerConfig(p, p.Services["web"], 1, "h")
}

func TestIsolationKeys(t *testing.T) {
	// /dev/null is no block device: the throttle is refused, naming the key.
	_, err := loadService(t, `name: iso
services:
  web:
    image: busybox
    blkio_config:
      device_read_bps: [{path: /dev/null, rate: 1mb}]
`, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), `service "web": blkio_config: /dev/null is not a block device`) {
		t.Fatalf("err = %v", err)
	}
	cfg, err := loadService(t, `name: iso
services:
  web:
    image: busybox
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64m, pids: 30}
        reservations: {memory: 16m}
`, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Resources; r.NanoCPUs != 5e8 || r.Memory != 64<<20 || r.PidsLimit != 30 || r.MemoryReservation != 16<<20 {
		t.Errorf("deploy resources %+v", r)
	}
	cfg, err = loadService(t, `name: iso
services:
  db:
    image: busybox
    ipc: shareable
  web:
    image: busybox
    group_add: [audio, "50"]
    cap_add: [net_admin]
    cap_drop: [CAP_NET_RAW]
    security_opt:
      - no-new-privileges:true
      - seccomp=profile.json
      - label=disable
    read_only: true
    tmpfs: ["/run:size=1m", /tmp]
    devices: ["/dev/null:/dev/mynull:rw"]
    device_cgroup_rules: ["c 10:229 rwm"]
    sysctls: {net.ipv4.ip_forward: "1"}
    ulimits:
      nproc: 100
      nofile: {soft: 1000, hard: 2000}
    shm_size: 16m
    ipc: service:db
    pid: host
    cgroup_parent: /mine
    oom_score_adj: -100
    init: true
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    cpu_shares: 512
    cpuset: "0"
    pids_limit: 40
    cpus: 0.5
`, map[string]string{"profile.json": `{"defaultAction":"SCMP_ACT_ALLOW"}`})
	if err != nil {
		t.Fatal(err)
	}
	sec, res := cfg.Security, cfg.Resources
	if !slices.Equal(sec.CapAdd, []string{"CAP_NET_ADMIN"}) || !slices.Equal(sec.CapDrop, []string{"CAP_NET_RAW"}) {
		t.Errorf("caps %v %v", sec.CapAdd, sec.CapDrop)
	}
	if !sec.NoNewPrivileges || sec.Seccomp != `{"defaultAction":"SCMP_ACT_ALLOW"}` || !slices.Equal(sec.Label, []string{"disable"}) {
		t.Errorf("security_opt: nnp %v seccomp %q label %v", sec.NoNewPrivileges, sec.Seccomp, sec.Label)
	}
	if !sec.ReadOnly || !sec.Init || sec.Pid != "host" || sec.Ipc != "container:iso-db-1" || sec.CgroupParent != "/mine" || *sec.OomScoreAdj != -100 || sec.ShmSize != 16<<20 {
		t.Errorf("security %+v", sec)
	}
	if len(sec.Tmpfs) != 2 || sec.Tmpfs[0].Target != "/run" || !slices.Equal(sec.Tmpfs[0].Options, []string{"size=1m"}) {
		t.Errorf("tmpfs %+v", sec.Tmpfs)
	}
	if len(sec.Devices) != 1 || sec.Devices[0] != (container.Device{Source: "/dev/null", Target: "/dev/mynull", Permissions: "rw"}) {
		t.Errorf("devices %+v", sec.Devices)
	}
	want := []container.Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}, {Name: "nproc", Soft: 100, Hard: 100}}
	if !slices.Equal(sec.Ulimits, want) {
		t.Errorf("ulimits %+v", sec.Ulimits)
	}
	if res.Memory != 64<<20 || res.MemorySwap != 128<<20 || res.MemoryReservation != 32<<20 || res.CPUShares != 512 || res.CpusetCpus != "0" || res.PidsLimit != 40 || res.NanoCPUs != 5e8 {
		t.Errorf("resources %+v", res)
	}
}

// TestIsolationBadInput: every refusal names the service and the key, is
// one line, and has a class.
func TestIsolationBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		yaml      string
		class     error
	}{
		{"unknown capability", "cap_add", "cap_add: [CAP_FLY]", errdefs.ErrInvalidArgument},
		{"unknown dropped capability", "cap_drop", "cap_drop: [FLY]", errdefs.ErrInvalidArgument},
		{"bad ulimit", "ulimits", "ulimits: {nofile: {soft: 20, hard: 10}}", errdefs.ErrInvalidArgument},
		{"unknown ulimit", "ulimits", "ulimits: {files: 10}", errdefs.ErrInvalidArgument},
		{"impossible memory", "mem_limit", "mem_limit: 1k", errdefs.ErrInvalidArgument},
		{"impossible deploy memory", "deploy.resources.limits.memory", "deploy: {resources: {limits: {memory: 1k}}}", errdefs.ErrInvalidArgument},
		{"unknown signal", "stop_signal", "stop_signal: SIGFLY", errdefs.ErrInvalidArgument},
		{"unparsable seccomp profile", "security_opt", "security_opt: [seccomp=bad.json]", errdefs.ErrInvalidArgument},
		{"missing seccomp profile", "security_opt", "security_opt: [seccomp=nope.json]", errdefs.ErrInvalidArgument},
		{"unknown security option", "security_opt", "security_opt: [fly=yes]", errdefs.ErrInvalidArgument},
		{"missing device", "devices", `devices: ["/dev/berth-nope:/dev/x"]`, errdefs.ErrInvalidArgument},
		{"CDI device", "devices", `devices: ["vendor.com/gpu=all"]`, errdefs.ErrNotImplemented},
		{"host sysctl", "sysctls", "sysctls: {kernel.panic: '1'}", errdefs.ErrInvalidArgument},
		{"network sysctl on the host's network", "sysctls", "network_mode: host\n    sysctls: {net.ipv4.ip_forward: '1'}", errdefs.ErrInvalidArgument},
		{"tmpfs option", "tmpfs", `tmpfs: ["/x:size=lots"]`, errdefs.ErrInvalidArgument},
		{"too many cpus", "cpus", "cpus: 4096", errdefs.ErrInvalidArgument},
		{"storage quota", "storage_opt", "storage_opt: {size: 1G}", errdefs.ErrNotImplemented},
		{"user namespace", "userns_mode", "userns_mode: private", errdefs.ErrNotImplemented},
		{"other runtime", "runtime", "runtime: runsc", errdefs.ErrNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadService(t, "name: bad\nservices:\n  web:\n    image: busybox\n    "+tc.yaml+"\n",
				map[string]string{"bad.json": `{"defaultAction": `})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), `service "web": `+tc.key+": ") || strings.Contains(err.Error(), "\n") || !errors.Is(err, tc.class) {
				t.Errorf("err = %q, want one line about %s of class %v", err, tc.key, tc.class)
			}
		})
	}
}
