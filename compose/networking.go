package compose

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// Driver options of Docker's bridge driver that Berth honours.
const (
	optBridgeName  = "com.docker.network.bridge.name"
	optMTU         = "com.docker.network.driver.mtu"
	optICC         = "com.docker.network.bridge.enable_icc"
	optHostBinding = "com.docker.network.bridge.host_binding_ipv4"
)

var knownDriverOpts = []string{optBridgeName, optMTU, optICC, optHostBinding}

// xBerth is the top-level x-berth extension (schema/x-berth.schema.json).
type xBerth struct {
	// NetworkPool is where the project's networks take their subnets from
	// when they name none, in BERTH_NETWORK_POOL's syntax.
	NetworkPool string `mapstructure:"network_pool" json:"network_pool"`
}

func projectExtension(p *types.Project) (xBerth, error) {
	var x xBerth
	if _, ok := p.Extensions["x-berth"]; !ok {
		return x, nil
	}
	if _, err := p.Extensions.Get("x-berth", &x); err != nil {
		return x, fmt.Errorf("x-berth: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return x, nil
}

// NetworkSpec turns the project's network key into what the engine creates.
// Bad values are errors naming the network and the key.
func NetworkSpec(p *types.Project, key string) (network.Spec, error) {
	n, ok := p.Networks[key]
	if !ok {
		return network.Spec{}, fmt.Errorf("network %q is not declared: %w", key, errdefs.ErrInvalidArgument)
	}
	x, err := projectExtension(p)
	if err != nil {
		return network.Spec{}, err
	}
	var pools []network.Pool
	if x.NetworkPool != "" {
		if pools, err = network.ParsePools(x.NetworkPool); err != nil {
			return network.Spec{}, fmt.Errorf("x-berth: network_pool: %w", err)
		}
	}
	labels := mergeLabels(n.Labels, map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: Version})
	return networkSpec(key, n, labels, pools)
}

// networkSpec maps a network's keys, as a compose file or berth network
// create gives them, to a spec; key names the network in errors.
func networkSpec(key string, n types.NetworkConfig, labels map[string]string, pools []network.Pool) (network.Spec, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("network %q: %s: %s: %w", key, field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	if n.Driver != "" && n.Driver != "bridge" {
		return network.Spec{}, fmt.Errorf("network %q: driver: %q is not supported, only bridge: %w", key, n.Driver, errdefs.ErrNotImplemented)
	}
	if n.EnableIPv4 != nil && !*n.EnableIPv4 {
		return network.Spec{}, fmt.Errorf("network %q: enable_ipv4: IPv6-only networks are not supported: %w", key, errdefs.ErrNotImplemented)
	}
	s := network.Spec{
		Name:       n.Name,
		Labels:     labels,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		EnableIPv6: n.EnableIPv6 != nil && *n.EnableIPv6,
		Pools:      pools,
	}
	if s.Name == "" {
		s.Name = key
	}
	if len(n.DriverOpts) > 0 {
		s.Options = maps.Clone(map[string]string(n.DriverOpts))
	}
	if v, ok := n.DriverOpts[optBridgeName]; ok {
		s.Bridge = v
	}
	if v, ok := n.DriverOpts[optMTU]; ok {
		mtu, err := strconv.Atoi(v)
		if err != nil {
			return network.Spec{}, bad("driver_opts", "%s %q is not a number", optMTU, v)
		}
		s.MTU = mtu
	}
	if v, ok := n.DriverOpts[optICC]; ok {
		icc, err := strconv.ParseBool(v)
		if err != nil {
			return network.Spec{}, bad("driver_opts", "%s %q is not true or false", optICC, v)
		}
		s.NoICC = !icc
	}
	if v, ok := n.DriverOpts[optHostBinding]; ok {
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is4() {
			return network.Spec{}, bad("driver_opts", "%s %q is not an ipv4 address", optHostBinding, v)
		}
		s.HostIP = ip
	}
	if d := n.Ipam.Driver; d != "" && d != "default" {
		return network.Spec{}, fmt.Errorf("network %q: ipam.driver: %q is not supported, only default: %w", key, d, errdefs.ErrNotImplemented)
	}
	for i, pool := range n.Ipam.Config {
		if err := ipamPool(&s, pool); err != nil {
			return network.Spec{}, fmt.Errorf("network %q: ipam.config[%d]: %v: %w", key, i, err, errdefs.ErrInvalidArgument)
		}
	}
	if err := network.CheckSpec(s); err != nil {
		return network.Spec{}, fmt.Errorf("network %q: %w", key, err)
	}
	return s, nil
}

// ipamPool reads one ipam.config entry into the family its subnet is of.
func ipamPool(s *network.Spec, pool *types.IPAMPool) error {
	if pool == nil {
		return nil
	}
	if pool.Subnet == "" {
		return fmt.Errorf("subnet is required")
	}
	sub, err := netip.ParsePrefix(pool.Subnet)
	if err != nil {
		return fmt.Errorf("subnet %q is not a prefix", pool.Subnet)
	}
	c := &s.IPv4
	if sub.Addr().Is6() {
		c = &s.IPv6
	}
	if c.Subnet.IsValid() {
		return fmt.Errorf("a second %s subnet (%s): one per family is supported", map[bool]string{true: "ipv6", false: "ipv4"}[sub.Addr().Is6()], sub)
	}
	c.Subnet = sub
	if pool.IPRange != "" {
		if c.Range, err = netip.ParsePrefix(pool.IPRange); err != nil {
			return fmt.Errorf("ip_range %q is not a prefix", pool.IPRange)
		}
	}
	if pool.Gateway != "" {
		if c.Gateway, err = netip.ParseAddr(pool.Gateway); err != nil {
			return fmt.Errorf("gateway %q is not an address", pool.Gateway)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pool.AuxiliaryAddresses)) {
		a, err := netip.ParseAddr(pool.AuxiliaryAddresses[name])
		if err != nil {
			return fmt.Errorf("aux_addresses: %s=%q is not an address", name, pool.AuxiliaryAddresses[name])
		}
		if c.Aux == nil {
			c.Aux = map[string]netip.Addr{}
		}
		c.Aux[name] = a
	}
	return nil
}

// networkingWarnings names the networking settings Berth does not act on:
// driver options other than the bridge driver's it knows, IPAM options,
// and the per-network keys of a service it has no use for.
func networkingWarnings(p *types.Project) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[name]
		for _, k := range slices.Sorted(maps.Keys(n.DriverOpts)) {
			if !slices.Contains(knownDriverOpts, k) {
				out = append(out, fmt.Sprintf("network %q: driver_opts %q is not supported and is ignored", name, k))
			}
		}
		if len(n.Ipam.Options) > 0 {
			out = append(out, fmt.Sprintf("network %q: ipam.options are not supported and are ignored", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, key := range slices.Sorted(maps.Keys(p.Services[name].Networks)) {
			c := p.Services[name].Networks[key]
			if c == nil {
				continue
			}
			for field, set := range map[string]bool{"link_local_ips": len(c.LinkLocalIPs) > 0, "interface_name": c.InterfaceName != "", "driver_opts": len(c.DriverOpts) > 0} {
				if set {
					out = append(out, fmt.Sprintf("service %q: networks: %s: %s is not supported and is ignored", name, key, field))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// serviceNetworking fills cfg's networks, ports and network settings from
// the service's keys.
func serviceNetworking(p *types.Project, s types.ServiceConfig, cfg *container.Config) error {
	where := func(field string) string { return fmt.Sprintf("service %q: %s", s.Name, field) }
	mode := s.NetworkMode
	if mode != "" && mode != "bridge" && len(s.Networks) > 0 {
		return fmt.Errorf("%s: network_mode %q cannot be combined with networks: %w", where("network_mode"), mode, errdefs.ErrInvalidArgument)
	}
	switch {
	case mode == "" || mode == "bridge":
		nets, err := serviceNetworks(p, s)
		if err != nil {
			return err
		}
		cfg.Networks = nets
	case mode == "none", mode == "host":
		cfg.Net.Mode = mode
	case strings.HasPrefix(mode, types.NetworkModeServicePrefix):
		name := strings.TrimPrefix(mode, types.NetworkModeServicePrefix)
		other, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("%s: service %q is not in the project: %w", where("network_mode"), name, errdefs.ErrInvalidArgument)
		}
		cfg.Net.Mode = container.NetworkModeContainerPref + ContainerName(p, other, 1)
	case strings.HasPrefix(mode, types.NetworkModeContainerPrefix):
		cfg.Net.Mode = mode
	default:
		return fmt.Errorf("%s: %q is not bridge, none, host, service:NAME or container:NAME: %w", where("network_mode"), mode, errdefs.ErrInvalidArgument)
	}
	joined := cfg.Net.Mode != "" && cfg.Net.Mode != "none" && cfg.Net.Mode != "host"
	if joined && (s.Hostname != "" || len(s.DNS) > 0 || len(s.DNSSearch) > 0 || len(s.DNSOpts) > 0 || len(s.ExtraHosts) > 0 || s.MacAddress != "") {
		// As Docker: the namespace, its names and resolver are the other
		// container's.
		return fmt.Errorf("%s: hostname, dns, dns_search, dns_opt, extra_hosts and mac_address cannot be set with network_mode %q: %w", where("network_mode"), mode, errdefs.ErrInvalidArgument)
	}
	cfg.Net.Domainname = s.DomainName
	cfg.Net.MacAddress = s.MacAddress
	cfg.Net.DNS = []string(s.DNS)
	cfg.Net.DNSSearch = []string(s.DNSSearch)
	cfg.Net.DNSOptions = s.DNSOpts
	for _, d := range s.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("%s: %q is not an ip address: %w", where("dns"), d, errdefs.ErrInvalidArgument)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.ExtraHosts)) {
		for _, addr := range s.ExtraHosts[name] {
			if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err != nil && addr != "host-gateway" {
				return fmt.Errorf("%s: %s: %q is not an ip address or host-gateway: %w", where("extra_hosts"), name, addr, errdefs.ErrInvalidArgument)
			}
			cfg.Net.ExtraHosts = append(cfg.Net.ExtraHosts, name+":"+addr)
		}
	}
	links, err := serviceLinks(p, s)
	if err != nil {
		return err
	}
	cfg.Net.Links = links

	if len(s.Ports) > 0 && cfg.Net.Mode != "" {
		// Docker discards published ports in these modes; Berth says so.
		return fmt.Errorf("%s: ports cannot be published with network_mode %q: %w", where("ports"), mode, errdefs.ErrInvalidArgument)
	}
	for _, port := range s.Ports {
		cp, err := servicePort(port)
		if err != nil {
			return fmt.Errorf("%s: %w", where("ports"), err)
		}
		cfg.Ports = append(cfg.Ports, cp)
	}
	return nil
}

// servicePort reads one ports entry (compose-go has expanded ranges with a
// range on both sides into one entry per port).
func servicePort(port types.ServicePortConfig) (container.Port, error) {
	cp := container.Port{HostIP: port.HostIP, ContainerPort: uint16(port.Target), Protocol: port.Protocol}
	if port.Target == 0 || port.Target > 65535 {
		return cp, fmt.Errorf("container port %d out of range: %w", port.Target, errdefs.ErrInvalidArgument)
	}
	if port.Protocol != "" && port.Protocol != "tcp" && port.Protocol != "udp" {
		return cp, fmt.Errorf("port %d: protocol %q is not supported, only tcp and udp: %w", port.Target, port.Protocol, errdefs.ErrNotImplemented)
	}
	if port.HostIP != "" {
		if _, err := netip.ParseAddr(strings.Trim(port.HostIP, "[]")); err != nil {
			return cp, fmt.Errorf("port %d: host_ip %q is not an ip address: %w", port.Target, port.HostIP, errdefs.ErrInvalidArgument)
		}
	}
	if port.Published == "" {
		return cp, nil // any free host port
	}
	lo, hi, isRange := strings.Cut(port.Published, "-")
	num := func(s string) (uint16, error) {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("host port %q is not a port number: %w", port.Published, errdefs.ErrInvalidArgument)
		}
		return uint16(n), nil
	}
	var err error
	if cp.HostPort, err = num(lo); err != nil {
		return cp, err
	}
	if isRange {
		if cp.HostPortEnd, err = num(hi); err != nil {
			return cp, err
		}
		if cp.HostPortEnd < cp.HostPort {
			return cp, fmt.Errorf("host port range %q is reversed: %w", port.Published, errdefs.ErrInvalidArgument)
		}
	}
	return cp, nil
}

// serviceLinks reads links ("service" or "service:alias") and
// external_links ("container" or "container:alias") into names only this
// service's containers resolve.
func serviceLinks(p *types.Project, s types.ServiceConfig) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range s.Links {
		svc, alias, _ := strings.Cut(l, ":")
		other, ok := p.Services[svc]
		if !ok {
			return nil, fmt.Errorf("service %q: links: service %q is not in the project: %w", s.Name, svc, errdefs.ErrInvalidArgument)
		}
		if alias == "" {
			alias = svc
		}
		out[alias] = ContainerName(p, other, 1)
	}
	for _, l := range s.ExternalLinks {
		name, alias, _ := strings.Cut(l, ":")
		if alias == "" {
			alias = name
		}
		out[alias] = name
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// serviceNetworks lists the service's networks, highest priority first and
// then by name, each with the service name as an alias as Compose does, and
// the service's static addresses and MAC address on it.
func serviceNetworks(p *types.Project, s types.ServiceConfig) ([]container.Attachment, error) {
	type entry struct {
		key string
		cfg *types.ServiceNetworkConfig
	}
	var es []entry
	if len(s.Networks) == 0 {
		es = append(es, entry{key: "default"})
	}
	for k, c := range s.Networks {
		es = append(es, entry{k, c})
	}
	prio := func(e entry) (int, int) {
		if e.cfg == nil {
			return 0, 0
		}
		return e.cfg.GatewayPriority, e.cfg.Priority
	}
	sort.Slice(es, func(i, j int) bool {
		gi, pi := prio(es[i])
		gj, pj := prio(es[j])
		// gw_priority picks the network of the default route, which is the
		// first one; then priority orders the rest, as Compose connects them.
		if gi != gj {
			return gi > gj
		}
		if pi != pj {
			return pi > pj
		}
		return es[i].key < es[j].key
	})
	var out []container.Attachment
	for _, e := range es {
		n, ok := p.Networks[e.key]
		if !ok {
			return nil, fmt.Errorf("service %q: networks: network %q is not declared: %w", s.Name, e.key, errdefs.ErrInvalidArgument)
		}
		a := container.Attachment{Network: n.Name, Aliases: []string{s.Name}}
		if c := e.cfg; c != nil {
			if c.UseServiceNameAlias != nil && !*c.UseServiceNameAlias {
				a.Aliases = nil
			}
			a.Aliases = append(a.Aliases, c.Aliases...)
			a.IPv4Address, a.IPv6Address, a.MacAddress = c.Ipv4Address, c.Ipv6Address, c.MacAddress
			for key, v := range map[string]string{"ipv4_address": c.Ipv4Address, "ipv6_address": c.Ipv6Address} {
				if v == "" {
					continue
				}
				if err := checkStaticAddr(p, e.key, key, v); err != nil {
					return nil, fmt.Errorf("service %q: networks: %s: %w", s.Name, e.key, err)
				}
			}
			if c.MacAddress != "" {
				if err := checkMAC(c.MacAddress); err != nil {
					return nil, fmt.Errorf("service %q: networks: %s: mac_address: %w", s.Name, e.key, err)
				}
			}
		}
		out = append(out, a)
	}
	if s.MacAddress != "" {
		if err := checkMAC(s.MacAddress); err != nil {
			return nil, fmt.Errorf("service %q: mac_address: %w", s.Name, err)
		}
	}
	return out, nil
}

// checkStaticAddr checks a static address against the network's declared
// subnet of its family: it must be a host address of it, and the network
// must have one (Docker refuses a static address on a network whose
// subnet the user did not choose).
func checkStaticAddr(p *types.Project, key, field, v string) error {
	ip, err := netip.ParseAddr(v)
	v6 := field == "ipv6_address"
	if err != nil || ip.Is4() == v6 {
		return fmt.Errorf("%s: %q is not an %s address: %w", field, v, strings.TrimSuffix(field, "_address"), errdefs.ErrInvalidArgument)
	}
	n := p.Networks[key]
	if bool(n.External) {
		return nil // its subnet is checked when the container connects
	}
	for _, pool := range n.Ipam.Config {
		if pool == nil {
			continue
		}
		if sub, err := netip.ParsePrefix(pool.Subnet); err == nil && sub.Addr().Is6() == v6 {
			if !sub.Contains(ip) || ip == sub.Masked().Addr() {
				return fmt.Errorf("%s: %s is outside the network's subnet %s: %w", field, ip, sub, errdefs.ErrInvalidArgument)
			}
			if gw, err := netip.ParseAddr(pool.Gateway); err == nil && gw == ip {
				return fmt.Errorf("%s: %s is the network's gateway: %w", field, ip, errdefs.ErrInvalidArgument)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %s needs an ipam subnet of that family on network %q: %w", field, ip, key, errdefs.ErrInvalidArgument)
}

func checkMAC(s string) error {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return fmt.Errorf("%q is not a mac address: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 16, 8); err != nil || len(p) != 2 {
			return fmt.Errorf("%q is not a mac address: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// CheckNetworking finds what is wrong across the project's networking
// before anything is created: subnets of its networks that overlap each
// other, two services with one static address, the same host port wanted
// twice. Each error names the service or network and the key.
func CheckNetworking(p *types.Project) error {
	type sub struct {
		key    string
		prefix netip.Prefix
	}
	var subs []sub
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[key]
		if bool(n.External) {
			continue
		}
		if _, err := NetworkSpec(p, key); err != nil {
			return err
		}
		for _, pool := range n.Ipam.Config {
			if pool == nil {
				continue
			}
			pr, err := netip.ParsePrefix(pool.Subnet)
			if err != nil {
				continue
			}
			for _, o := range subs {
				if o.prefix.Overlaps(pr) {
					return fmt.Errorf("network %q: ipam.config: subnet %s overlaps subnet %s of network %q: %w", key, pr, o.prefix, o.key, errdefs.ErrInvalidArgument)
				}
			}
			subs = append(subs, sub{key, pr})
		}
	}
	static := map[string]string{} // network/address -> service
	type hostPort struct {
		service string
		port    network.Port
	}
	var ports []hostPort
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		for _, key := range slices.Sorted(maps.Keys(s.Networks)) {
			c := s.Networks[key]
			if c == nil {
				continue
			}
			for _, a := range []string{c.Ipv4Address, c.Ipv6Address} {
				if a == "" {
					continue
				}
				if Replicas(s) > 1 {
					return fmt.Errorf("service %q: networks: %s: a static address cannot be shared by %d replicas: %w", name, key, Replicas(s), errdefs.ErrInvalidArgument)
				}
				if other, ok := static[key+"/"+a]; ok {
					return fmt.Errorf("service %q: networks: %s: address %s is also service %q's: %w", name, key, a, other, errdefs.ErrInvalidArgument)
				}
				static[key+"/"+a] = name
			}
		}
		for _, port := range s.Ports {
			cp, err := servicePort(port)
			if err != nil || cp.HostPort == 0 || cp.HostPortEnd != 0 {
				continue // reported with the service, or any free port
			}
			np, err := networkPort(cp)
			if err != nil {
				continue
			}
			for _, o := range ports {
				if network.PortsClash(np, o.port) && (o.service != name || Replicas(s) == 1) {
					return fmt.Errorf("service %q: ports: host port %s is also published by service %q: %w", name, np, o.service, errdefs.ErrInvalidArgument)
				}
			}
			if Replicas(s) > 1 {
				return fmt.Errorf("service %q: ports: host port %s cannot be published by %d replicas; leave the host port out or give a range: %w", name, np, Replicas(s), errdefs.ErrInvalidArgument)
			}
			ports = append(ports, hostPort{name, np})
		}
	}
	return nil
}

func networkPort(p container.Port) (network.Port, error) {
	np := network.Port{HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
	if np.Protocol == "" {
		np.Protocol = "tcp"
	}
	if p.HostIP != "" {
		ip, err := netip.ParseAddr(strings.Trim(p.HostIP, "[]"))
		if err != nil {
			return np, err
		}
		np.HostIP = ip
	}
	return np, nil
}

// preflight checks what the plan will ask of the host before any of it is
// done: a subnet that is already routed or used by another network, a host
// port another process or Berth already holds. Each error names the network
// or service and the key.
func preflight(ctx context.Context, e *engine.Engine, plan Plan) error {
	leaving := map[string]bool{} // containers the plan stops: their ports free up
	for _, s := range plan.Steps {
		if s.Action == ActStop || s.Action == ActRemove {
			leaving[s.Container] = true
		}
	}
	for _, s := range plan.Steps {
		switch s.Action {
		case ActCreateNetwork:
			if err := e.Networks.CheckAvailable(ctx, s.Network); err != nil {
				return fmt.Errorf("network %q: ipam: %w", s.Network.Name, err)
			}
		case ActCreate:
			var ports []network.Port
			for _, p := range s.Config.Ports {
				if np, err := networkPort(p); err == nil {
					ports = append(ports, np)
				}
			}
			if err := network.CheckHostPorts(ports, leaving); err != nil {
				return fmt.Errorf("service %q: ports: %w", s.Service, err)
			}
		}
	}
	return nil
}
