package compose

import (
	"fmt"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/jsonkeys"
)

// The keys Berth acts on. Any other key set in a project gets a warning
// (Unsupported) when it is loaded (package files).

// supportedServiceKeys are the service keys Berth acts on; any other key
// that is set gets a warning rather than being ignored silently.
var supportedServiceKeys = map[string]bool{
	"image": true, "command": true, "entrypoint": true, "environment": true,
	"env_file": true, "working_dir": true, "user": true, "hostname": true,
	"depends_on": true, "links": true, "ports": true, "volumes": true,
	"networks": true, "container_name": true, "labels": true,
	"profiles": true, "restart": true, "stop_signal": true,
	"stop_grace_period": true, "network_mode": true, "ipc": true, "pid": true,
	// expose only documents ports on a network where every port is open
	// anyway; volumes_from is an ordering edge in the graph.
	"expose": true, "volumes_from": true, "secrets": true, "configs": true,
	// networking (compose/networking.go)
	"dns": true, "dns_search": true, "dns_opt": true, "domainname": true,
	"extra_hosts": true, "mac_address": true, "external_links": true,
	// run by the container's shim (compose/run.go)
	"healthcheck": true, "tty": true, "stdin_open": true,
	"logging": true,
	// Security and resource keys (security.go).
	"group_add": true, "cap_add": true, "cap_drop": true, "privileged": true,
	"security_opt": true, "read_only": true, "tmpfs": true, "devices": true,
	"device_cgroup_rules": true, "sysctls": true, "ulimits": true, "shm_size": true,
	"uts": true, "cgroup": true, "cgroup_parent": true, "oom_score_adj": true,
	"init": true, "mem_limit": true, "memswap_limit": true, "mem_reservation": true,
	"mem_swappiness": true, "oom_kill_disable": true, "cpus": true, "cpu_shares": true,
	"cpu_quota": true, "cpu_period": true, "cpu_rt_runtime": true, "cpu_rt_period": true,
	"cpuset": true, "pids_limit": true, "blkio_config": true, "deploy": true,
	"userns_mode": true, "storage_opt": true, "runtime": true, "isolation": true,
	// build: the builder's keys are checked by unsupportedBuildKeys;
	// develop: its watch triggers by watchRules.
	"build": true, "develop": true, "pull_policy": true,
}

// supportedNetworkKeys and supportedVolumeKeys are the keys Berth acts on in
// the top-level networks and volumes sections.
var supportedNetworkKeys = map[string]bool{"name": true, "external": true, "internal": true, "labels": true, "driver": true,
	"driver_opts": true, "ipam": true, "attachable": true, "enable_ipv6": true, "enable_ipv4": true}
var supportedVolumeKeys = map[string]bool{"name": true, "external": true, "labels": true, "driver": true, "driver_opts": true}

// Unsupported lists, sorted, one warning for every key set in p that Berth
// does not act on yet, so nothing is ignored silently.
func Unsupported(p *types.Project) []string {
	var out []string
	for _, name := range slices.Sorted(mapKeys(p.Services)) {
		for _, k := range jsonkeys.Set(p.Services[name]) {
			if !supportedServiceKeys[k] {
				out = append(out, fmt.Sprintf("service %q: key %q is not supported yet and is ignored", name, k))
			}
		}
		out = append(out, isolationWarnings(name, p.Services[name])...)
		out = append(out, loggingWarnings(name, p.Services[name])...)
		out = append(out, unsupportedBuildKeys(name, p.Services[name].Build)...)
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind && v.Type != types.VolumeTypeVolume && v.Type != types.VolumeTypeTmpfs {
				out = append(out, fmt.Sprintf("service %q: volume of type %q is not supported yet and is ignored", name, v.Type))
			}
		}
	}
	for _, name := range slices.Sorted(mapKeys(p.Networks)) {
		n := p.Networks[name]
		for _, k := range jsonkeys.Set(n) {
			if !supportedNetworkKeys[k] {
				out = append(out, fmt.Sprintf("network %q: key %q is not supported yet and is ignored", name, k))
			}
		}
	}
	out = append(out, networkingWarnings(p)...)
	for _, name := range slices.Sorted(mapKeys(p.Volumes)) {
		v := p.Volumes[name]
		for _, k := range jsonkeys.Set(v) {
			if !supportedVolumeKeys[k] {
				out = append(out, fmt.Sprintf("volume %q: key %q is not supported yet and is ignored", name, k))
			}
		}
		if v.Driver != "" && v.Driver != "local" {
			out = append(out, fmt.Sprintf("volume %q: driver %q is not supported yet; a local volume is used", name, v.Driver))
		}
	}
	for _, top := range []struct {
		key string
		n   int
	}{{"models", len(p.Models)}} {
		if top.n > 0 {
			out = append(out, fmt.Sprintf("key %q is not supported yet and is ignored", top.key))
		}
	}
	return out
}
