package runtime

import (
	"fmt"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// libcontainerConfig converts the OCI spec of a bundle into libcontainer's
// container configuration, including the process settings specconv leaves
// to its caller (resource limits, AppArmor), so that every process of the
// container, the first and each exec, gets them. It changes spec's
// relative paths.
func libcontainerConfig(id, bundle string, spec *specs.Spec) (*configs.Config, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	absolute(spec, bundle)
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("convert spec: %w", err)
	}
	cfg.Labels = setBundleLabel(cfg.Labels, bundle)
	for _, r := range spec.Process.Rlimits {
		typ, ok := rlimitTypes[r.Type]
		if !ok {
			return nil, fmt.Errorf("convert spec: unknown rlimit %q", r.Type)
		}
		cfg.Rlimits = append(cfg.Rlimits, configs.Rlimit{Type: typ, Soft: r.Soft, Hard: r.Hard})
	}
	cfg.AppArmorProfile = spec.Process.ApparmorProfile
	return cfg, nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}
