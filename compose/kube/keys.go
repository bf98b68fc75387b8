package kube

import (
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/jsonkeys"
)

// converted are the service keys the conversion acts on; inert are keys
// that mean nothing in a cluster (how a developer's machine attaches,
// watches or pulls) and are dropped without a word.
var (
	converted = set("image", "build", "command", "entrypoint", "environment", "env_file",
		"working_dir", "user", "group_add", "cap_add", "cap_drop", "privileged", "read_only",
		"ports", "expose", "networks", "network_mode", "volumes", "tmpfs", "shm_size", "secrets", "configs",
		"healthcheck", "depends_on", "deploy", "mem_limit", "mem_reservation", "cpus", "pids_limit",
		"restart", "labels", "label_file", "annotations", "stop_grace_period", "hostname",
		"extra_hosts", "scale", "links", "security_opt", "tty", "stdin_open", "platform",
		"pull_policy", "sysctls", "dns_search", "dns_opt")
	inert        = set("profiles", "attach", "develop", "pull_refresh_after")
	deployKeys   = set("mode", "replicas", "resources", "restart_policy", "labels")
	noEquivalent = map[string]string{
		"container_name": "pods get generated names; the service's name resolves instead",
		"dns":            "pods ask the cluster's DNS server; custom servers are not converted",
		"stop_signal":    "the kubelet stops containers with SIGTERM (Kubernetes' stop signal field is still alpha); make the process handle it",
		"volumes_from":   "pods cannot mount another pod's volumes; mount the named volumes themselves",
	}
)

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// dropped warns once for each key set on s that the conversion does not
// carry over, so that no key disappears silently.
func (c *converter) dropped(s types.ServiceConfig) {
	for _, k := range jsonkeys.Set(s) {
		switch {
		case converted[k] || inert[k]:
		case noEquivalent[k] != "":
			c.warn(svc(s.Name), k, "%s", noEquivalent[k])
		case k == "ipc" || k == "pid":
			mode := map[string]string{"ipc": s.Ipc, "pid": s.Pid}[k]
			if mode != "private" && mode != "shareable" {
				c.warn(svc(s.Name), k, "%q: pods share no namespaces with the node or other pods; dropped", mode)
			}
		default:
			c.warn(svc(s.Name), k, "has no equivalent in Kubernetes; dropped")
		}
	}
	if s.Deploy != nil {
		for _, k := range jsonkeys.Set(*s.Deploy) {
			if !deployKeys[k] {
				c.warn(svc(s.Name), "deploy."+k, "has no equivalent in Kubernetes; dropped")
			}
		}
	}
}
