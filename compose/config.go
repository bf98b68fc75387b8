package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"go.yaml.in/yaml/v4"
)

// serviceKeyOrder is the order in which docker compose config prints a
// service's keys: the field order of compose-go v2.14.0's ServiceConfig,
// which Docker Compose v5 builds with. The compose-go Berth uses groups the
// same fields differently, so its own output is reordered to this. Keys not
// listed (newer than v2.14.0) follow, in their own order.
var serviceKeyOrder = []string{
	"name", "profiles", "annotations", "attach", "build", "develop", "blkio_config", "cap_add", "cap_drop",
	"cgroup_parent", "cgroup", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
	"cpu_rt_runtime", "cpus", "cpuset", "cpu_shares", "command", "configs", "container_name", "credential_spec",
	"depends_on", "deploy", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "dockerfile",
	"domainname", "entrypoint", "provider", "environment", "env_file", "expose", "extends", "external_links",
	"extra_hosts", "group_add", "gpus", "hostname", "healthcheck", "image", "init", "ipc", "isolation", "labels",
	"label_file", "links", "logging", "log_driver", "log_opt", "mem_limit", "mem_reservation", "memswap_limit",
	"mem_swappiness", "mac_address", "models", "net", "network_mode", "networks", "oom_kill_disable",
	"oom_score_adj", "pid", "pids_limit", "platform", "ports", "privileged", "pull_policy", "read_only", "restart",
	"runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal",
	"storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts",
	"volume_driver", "volumes", "volumes_from", "working_dir", "pre_start", "post_start", "pre_stop",
}

var serviceKeyRank = func() map[string]int {
	m := map[string]int{}
	for i, k := range serviceKeyOrder {
		m[k] = i
	}
	return m
}()

// keyRank places a key: listed keys by their place, others after them and
// extensions (x-...) last, as compose-go's inline extensions come last.
func keyRank(k string) int {
	if r, ok := serviceKeyRank[k]; ok {
		return r
	}
	if len(k) > 2 && k[:2] == "x-" {
		return len(serviceKeyOrder) + 1
	}
	return len(serviceKeyOrder)
}

// RenderConfig renders the project as docker compose config does, in
// "yaml" or "json": the same keys in the same order, and every "$" doubled
// so the output loads back to the same project.
func RenderConfig(p *types.Project, format string) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch format {
	case "yaml", "":
		out, err = configYAML(p)
	case "json":
		out, err = configJSON(p)
	default:
		return nil, fmt.Errorf("format %q: must be yaml or json: %w", format, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(out, []byte("$"), []byte("$$")), nil
}

func configYAML(p *types.Project) ([]byte, error) {
	b, err := p.MarshalYAML()
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if svcs := mappingValue(doc.Content[0], "services"); svcs != nil {
		for i := 1; i < len(svcs.Content); i += 2 {
			sortMapping(svcs.Content[i])
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mappingValue is the value under key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// sortMapping puts a service's keys in Compose's order.
func sortMapping(m *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return
	}
	type pair struct{ k, v *yaml.Node }
	pairs := make([]pair, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pairs = append(pairs, pair{m.Content[i], m.Content[i+1]})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return keyRank(a.k.Value) - keyRank(b.k.Value) })
	m.Content = m.Content[:0]
	for _, p := range pairs {
		m.Content = append(m.Content, p.k, p.v)
	}
}

// configJSON is compose-go v2.14.0's Project.MarshalJSON with the service
// keys in Compose's order: encoding/json sorts the top-level map; each
// service is written key by key, then the whole is indented as
// json.MarshalIndent would.
func configJSON(p *types.Project) ([]byte, error) {
	top := map[string]any{"name": p.Name}
	if len(p.Networks) > 0 {
		top["networks"] = p.Networks
	}
	if len(p.Volumes) > 0 {
		top["volumes"] = p.Volumes
	}
	if len(p.Secrets) > 0 {
		top["secrets"] = p.Secrets
	}
	if len(p.Configs) > 0 {
		top["configs"] = p.Configs
	}
	for k, v := range p.Extensions {
		top[k] = v
	}
	svcs := map[string]json.RawMessage{}
	for name, s := range p.Services {
		raw, err := serviceJSON(s)
		if err != nil {
			return nil, err
		}
		svcs[name] = raw
	}
	top["services"] = svcs
	compact, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// serviceJSON marshals one service with its keys in Compose's order.
func serviceJSON(s types.ServiceConfig) (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	// Which keys, in what order, comes from the encoding itself, so keys
	// are never lost; only their order changes.
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(keys, func(a, b string) int { return keyRank(a) - keyRank(b) })
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
