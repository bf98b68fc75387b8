package compose

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/jsonkeys"
)

// isolation maps a service's security and resource keys to the engine's
// records and validates them, so a bad value fails the plan before
// anything is created. Errors name the service and the key.
func isolation(p *types.Project, s types.ServiceConfig) (container.Security, container.Resources, error) {
	fail := func(key string, err error) (container.Security, container.Resources, error) {
		if !errors.Is(err, errdefs.ErrNotImplemented) && !errors.Is(err, errdefs.ErrInvalidArgument) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		return container.Security{}, container.Resources{}, fmt.Errorf("service %q: %s: %w", s.Name, key, err)
	}
	if err := unsupportedIsolation(s); err != nil {
		return fail(err.key, err.err)
	}
	if _, err := runtime.ParseSignal(s.StopSignal, 0); err != nil {
		return fail("stop_signal", err)
	}
	sec := container.Security{
		GroupAdd:          s.GroupAdd,
		Privileged:        s.Privileged,
		ReadOnly:          s.ReadOnly,
		Init:              s.Init != nil && *s.Init,
		Ipc:               serviceRef(p, s.Ipc),
		Pid:               serviceRef(p, s.Pid),
		Uts:               s.Uts,
		Cgroup:            s.Cgroup,
		CgroupParent:      s.CgroupParent,
		ShmSize:           int64(s.ShmSize),
		DeviceCgroupRules: s.DeviceCgroupRules,
	}
	for _, c := range s.CapAdd {
		n, err := container.NormalizeCapability(c)
		if err != nil {
			return fail("cap_add", err)
		}
		sec.CapAdd = append(sec.CapAdd, n)
	}
	for _, c := range s.CapDrop {
		n, err := container.NormalizeCapability(c)
		if err != nil {
			return fail("cap_drop", err)
		}
		sec.CapDrop = append(sec.CapDrop, n)
	}
	if s.OomScoreAdj != 0 {
		v := int(s.OomScoreAdj)
		sec.OomScoreAdj = &v
	}
	for _, o := range s.SecurityOpt {
		if err := securityOpt(p, o, &sec); err != nil {
			return fail("security_opt", err)
		}
	}
	for _, t := range s.Tmpfs {
		tm, err := container.ParseTmpfs(t)
		if err != nil {
			return fail("tmpfs", errors.Unwrap(err))
		}
		sec.Tmpfs = append(sec.Tmpfs, tm)
	}
	for _, d := range s.Devices {
		if !filepath.IsAbs(d.Source) {
			return fail("devices", fmt.Errorf("%q: CDI device names are not supported; give a host path such as /dev/fuse: %w", d.Source, errdefs.ErrNotImplemented))
		}
		sec.Devices = append(sec.Devices, container.Device{Source: d.Source, Target: d.Target, Permissions: d.Permissions})
	}
	if len(s.Sysctls) > 0 {
		sec.Sysctls = map[string]string(s.Sysctls)
		if s.NetworkMode == "host" || strings.HasPrefix(s.NetworkMode, types.ServicePrefix) || strings.HasPrefix(s.NetworkMode, types.ContainerPrefix) {
			for _, k := range slices.Sorted(mapKeys(s.Sysctls)) {
				if strings.HasPrefix(k, "net.") {
					return fail("sysctls", fmt.Errorf("%s belongs to the network namespace, which network_mode %s shares: %w", k, s.NetworkMode, errdefs.ErrInvalidArgument))
				}
			}
		}
	}
	for _, name := range slices.Sorted(mapKeys(s.Ulimits)) {
		u := s.Ulimits[name]
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		sec.Ulimits = append(sec.Ulimits, container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	if err := sec.Validate(); err != nil {
		return fail(keyOf(err), errors.Unwrap(err))
	}

	res := container.Resources{
		Memory:             int64(s.MemLimit),
		MemorySwap:         int64(s.MemSwapLimit),
		MemoryReservation:  int64(s.MemReservation),
		OomKillDisable:     s.OomKillDisable,
		NanoCPUs:           int64(float64(s.CPUS) * 1e9),
		CPUShares:          s.CPUShares,
		CPUQuota:           s.CPUQuota,
		CPUPeriod:          s.CPUPeriod,
		CPURealtimeRuntime: s.CPURTRuntime,
		CPURealtimePeriod:  s.CPURTPeriod,
		CpusetCpus:         s.CPUSet,
		PidsLimit:          s.PidsLimit,
	}
	if s.MemSwappiness != 0 {
		v := int64(s.MemSwappiness)
		res.MemorySwappiness = &v
	}
	from := map[string]string{}
	if s.Deploy != nil {
		// As docker compose does: deploy's limits win; compose-go has
		// already refused values that contradict the plain keys.
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				res.Memory, from["memory"] = int64(l.MemoryBytes), "deploy.resources.limits.memory"
			}
			if l.NanoCPUs != 0 {
				res.NanoCPUs, from["nano_cpus"] = int64(float64(l.NanoCPUs.Value())*1e9), "deploy.resources.limits.cpus"
			}
			if l.Pids != 0 {
				res.PidsLimit, from["pids_limit"] = l.Pids, "deploy.resources.limits.pids"
			}
		}
		if r := s.Deploy.Resources.Reservations; r != nil && r.MemoryBytes != 0 {
			res.MemoryReservation, from["memory_reservation"] = int64(r.MemoryBytes), "deploy.resources.reservations.memory"
		}
	}
	if b := s.BlkioConfig; b != nil {
		res.BlkioWeight = b.Weight
		for _, d := range b.WeightDevice {
			res.BlkioWeightDevice = append(res.BlkioWeightDevice, container.WeightDevice{Path: d.Path, Weight: d.Weight})
		}
		conv := func(in []types.ThrottleDevice) []container.ThrottleDevice {
			var out []container.ThrottleDevice
			for _, d := range in {
				out = append(out, container.ThrottleDevice{Path: d.Path, Rate: uint64(d.Rate)})
			}
			return out
		}
		res.BlkioDeviceReadBps, res.BlkioDeviceWriteBps = conv(b.DeviceReadBps), conv(b.DeviceWriteBps)
		res.BlkioDeviceReadIOps, res.BlkioDeviceWriteIOps = conv(b.DeviceReadIOps), conv(b.DeviceWriteIOps)
	}
	if err := res.Validate(); err != nil {
		field := keyOf(err)
		key, ok := from[field]
		if !ok {
			key = resourceKeys[field]
		}
		return fail(key, errors.Unwrap(err))
	}
	return sec, res, nil
}

// resourceKeys maps Resources fields to the Compose keys that set them.
var resourceKeys = map[string]string{
	"memory": "mem_limit", "memory_swap": "memswap_limit", "memory_reservation": "mem_reservation",
	"memory_swappiness": "mem_swappiness", "nano_cpus": "cpus", "cpu_shares": "cpu_shares",
	"cpu_quota": "cpu_quota", "cpu_period": "cpu_period", "cpu_rt_runtime": "cpu_rt_runtime",
	"cpuset": "cpuset", "pids_limit": "pids_limit", "blkio_config": "blkio_config",
}

func keyOf(err error) string {
	var fe *container.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return "security_opt"
}

// serviceRef turns Compose's "service:NAME" into the name of that
// service's first container, which is what the engine can look up.
func serviceRef(p *types.Project, v string) string {
	name, ok := strings.CutPrefix(v, types.ServicePrefix)
	if !ok {
		return v
	}
	if svc, ok := p.Services[name]; ok {
		return "container:" + ContainerName(p, svc, 1)
	}
	return "container:" + name
}

// securityOpt applies one security_opt entry, in Docker's KEY=VALUE form or
// the older KEY:VALUE one.
func securityOpt(p *types.Project, opt string, sec *container.Security) error {
	key, val, ok := strings.Cut(opt, "=")
	if !ok {
		key, val, ok = strings.Cut(opt, ":")
	}
	switch key {
	case "no-new-privileges":
		switch {
		case !ok || val == "true":
			sec.NoNewPrivileges = true
		case val == "false":
			sec.NoNewPrivileges = false
		default:
			return fmt.Errorf("%q: want no-new-privileges, no-new-privileges=true or =false: %w", opt, errdefs.ErrInvalidArgument)
		}
	case "seccomp":
		switch {
		case !ok || val == "":
			return fmt.Errorf("%q: want seccomp=unconfined or seccomp=PROFILE.json: %w", opt, errdefs.ErrInvalidArgument)
		case val == container.SeccompUnconfined:
			sec.Seccomp = val
		default:
			path := val
			if !filepath.IsAbs(path) {
				path = filepath.Join(p.WorkingDir, path)
			}
			body, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("seccomp profile %s: %w: %w", val, errors.Unwrap(err), errdefs.ErrInvalidArgument)
			}
			sec.Seccomp = string(body)
		}
	case "apparmor":
		if !ok || val == "" {
			return fmt.Errorf("%q: want apparmor=PROFILE or apparmor=unconfined: %w", opt, errdefs.ErrInvalidArgument)
		}
		sec.AppArmor = val
	case "label":
		if !ok || val == "" {
			return fmt.Errorf("%q: want label=disable or label=TYPE:VALUE: %w", opt, errdefs.ErrInvalidArgument)
		}
		sec.Label = append(sec.Label, val)
	case "systempaths":
		sec.SystemPaths = val
	default:
		return fmt.Errorf("unknown option %q (known: no-new-privileges, seccomp, apparmor, label, systempaths): %w", opt, errdefs.ErrInvalidArgument)
	}
	return nil
}

// keyError names the key a refusal is about.
type keyError struct {
	key string
	err error
}

// unsupportedIsolation refuses keys Berth does not honour yet that would
// make the container more confined than it gets: running it anyway would
// give the user a looser sandbox than they asked for.
func unsupportedIsolation(s types.ServiceConfig) *keyError {
	no := func(key, why string) *keyError {
		return &keyError{key, fmt.Errorf("%s: %w", why, errdefs.ErrNotImplemented)}
	}
	switch {
	case len(s.StorageOpt) > 0:
		return no("storage_opt", "a per-container storage quota is not supported")
	case s.Runtime != "" && s.Runtime != "runc":
		return no("runtime", fmt.Sprintf("runtime %q is not available; Berth runs containers with its embedded runc", s.Runtime))
	case s.UserNSMode != "" && s.UserNSMode != "host":
		return no("userns_mode", fmt.Sprintf("%q: user namespaces are not supported; only host is", s.UserNSMode))
	case s.Isolation != "" && s.Isolation != "default" && s.Isolation != "process":
		return no("isolation", fmt.Sprintf("%q is a Windows isolation technology", s.Isolation))
	}
	return nil
}

// isolationWarnings are the warnings about a service's security and
// resource keys that Berth accepts but cannot honour in full, either by
// design (Swarm-only deploy keys, as docker compose ignores them) or
// because this host lacks the kernel feature (as Docker then warns).
func isolationWarnings(name string, s types.ServiceConfig) []string {
	var out []string
	warn := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("service %q: ", name)+fmt.Sprintf(format, args...))
	}
	if d := s.Deploy; d != nil {
		for _, k := range jsonkeys.Set(*d) {
			if k != "replicas" && k != "resources" {
				warn("deploy.%s is not supported (it configures Swarm) and is ignored", k)
			}
		}
		if r := d.Resources.Reservations; r != nil {
			if r.NanoCPUs != 0 {
				warn("deploy.resources.reservations.cpus is not enforced, as with docker compose")
			}
			if len(r.Devices)+len(r.GenericResources) > 0 {
				warn("deploy.resources.reservations devices and generic_resources are not supported and are ignored")
			}
		}
	}
	if b := s.BlkioConfig; b != nil && (b.Weight != 0 || len(b.WeightDevice) > 0) && !container.BlkioWeightSupported() {
		warn("blkio_config weights are ignored: this host's block IO controller takes no weights (as Docker, Berth runs the container without them)")
	}
	if s.MemSwapLimit != 0 && !container.SwapLimitSupported() {
		warn("memswap_limit is ignored: this host's kernel does not account swap per cgroup (as Docker, Berth limits memory only)")
	}
	return out
}
