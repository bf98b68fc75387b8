package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/hostside"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/stopwatch"
	"github.com/berth-dev/berth/netdns"
)

// netSetup is what a start needs of the container's networking.
type netSetup struct {
	netns      string // namespace to join; "" with host
	host       bool   // the host's namespace
	hostname   string
	domainname string
	files      []specs.Mount // /etc/hostname, /etc/hosts, /etc/resolv.conf
}

// applySpec makes the spec match: no network namespace of its own in host
// mode, the domain name.
func (n netSetup) applySpec(s *specs.Spec) {
	s.Domainname = n.domainname
	if n.host && s.Linux != nil {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
			return ns.Type == specs.NetworkNamespace
		})
	}
}

// prepareNetwork gives the container its network: a namespace with an
// interface per network, published ports and DNS (or the host's network,
// or another container's), and its /etc/hostname, hosts and resolv.conf.
// Like the rest of prepare, each step only adds: teardown undoes any prefix.
func (e *Engine) prepareNetwork(ctx context.Context, c container.Container, sw *stopwatch.Watch) (netSetup, error) {
	cfg := c.Config
	ns := netSetup{hostname: cfg.Hostname, domainname: cfg.Net.Domainname}
	if ns.hostname == "" {
		ns.hostname = c.ShortID()
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	resolver, err := hostside.ResolverOf(cfg.Net)
	if err != nil {
		return netSetup{}, fmt.Errorf("container %s: %w", c.Name, err)
	}
	switch mode := cfg.Net.Mode; {
	case mode == container.NetworkModeHost:
		ns.host = true
		if cfg.Hostname == "" {
			ns.hostname, _ = os.Hostname()
		}
		hosts, _ := os.ReadFile("/etc/hosts")
		extra, err := extraHosts(cfg.Net.ExtraHosts, nil)
		if err != nil {
			return netSetup{}, fmt.Errorf("container %s: extra_hosts: %w", c.Name, err)
		}
		ns.files, err = e.writeEtcFiles(c, ns.hostname, netdns.AppendHosts(hosts, extra...), netdns.ResolvConf(hostResolv, resolver, false))
		return ns, err
	case strings.HasPrefix(mode, container.NetworkModeContainerPref):
		return e.joinNetwork(ctx, c, strings.TrimPrefix(mode, container.NetworkModeContainerPref), ns)
	}

	if ns.netns, err = e.Networks.CreateSandbox(ctx, c.ID); err != nil {
		return netSetup{}, err
	}
	sw.Lap("netns")
	var endpoints []network.Endpoint
	for i, a := range cfg.Networks {
		att, err := attachment(c, a, i)
		if err != nil {
			return netSetup{}, err
		}
		ep, err := e.Networks.Connect(ctx, a.Network, c.ID, ns.netns, att)
		if err != nil {
			return netSetup{}, fmt.Errorf("connect to network %q: %w", a.Network, err)
		}
		endpoints = append(endpoints, ep)
	}
	sw.Lap("connect")
	if err := e.publish(ctx, c, endpoints); err != nil {
		return netSetup{}, err
	}
	sw.Lap("publish")
	if len(endpoints) > 0 {
		if err := e.host.SyncDNS(ctx); err != nil {
			return netSetup{}, fmt.Errorf("dns: %w", err)
		}
	}
	sw.Lap("dns")

	var own []netip.Addr
	var gws []netip.Addr
	if len(endpoints) > 0 {
		own, gws = endpoints[0].Addrs(), []netip.Addr{endpoints[0].Gateway}
		if endpoints[0].Gateway6.IsValid() {
			gws = append(gws, endpoints[0].Gateway6)
		}
	}
	extra, err := extraHosts(cfg.Net.ExtraHosts, gws)
	if err != nil {
		return netSetup{}, fmt.Errorf("container %s: extra_hosts: %w", c.Name, err)
	}
	names := []string{ns.hostname}
	if ns.domainname != "" {
		names = []string{ns.hostname + "." + ns.domainname, ns.hostname}
	}
	resolv := netdns.ResolvConf(hostResolv, resolver, len(endpoints) > 0)
	ns.files, err = e.writeEtcFiles(c, ns.hostname, netdns.Hosts(own, names, extra), resolv)
	return ns, err
}

// joinNetwork is network_mode container:<ref>: the container shares the
// namespace of a running container, and so its interfaces, DNS and files.
func (e *Engine) joinNetwork(ctx context.Context, c container.Container, ref string, ns netSetup) (netSetup, error) {
	other, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return netSetup{}, fmt.Errorf("container %s: network_mode container:%s: %w", c.Name, ref, err)
	}
	path := e.Networks.SandboxPath(other.ID)
	if _, err := os.Stat(path); err != nil {
		return netSetup{}, fmt.Errorf("container %s: network_mode: container %s is not running: %w", c.Name, other.Name, errdefs.ErrFailedPrecondition)
	}
	ns.netns = path
	if c.Config.Hostname == "" {
		ns.hostname = other.Config.Hostname
		if ns.hostname == "" {
			ns.hostname = other.ShortID()
		}
	}
	// Its files are in its run directory, or, started by a berth before
	// that, beside its record.
	dir := e.runDir(other.ID)
	if _, err := os.Stat(filepath.Join(dir, "hosts")); err != nil {
		dir = e.Containers.Dir(other.ID)
	}
	for _, name := range []string{"hosts", "resolv.conf"} {
		ns.files = append(ns.files, etcMount(name, filepath.Join(dir, name)))
	}
	p := filepath.Join(e.runDir(c.ID), "hostname")
	if err := writeEtcFile(p, []byte(ns.hostname+"\n")); err != nil {
		return netSetup{}, err
	}
	ns.files = append(ns.files, etcMount("hostname", p))
	return ns, nil
}

// attachment turns a container's network entry into the manager's terms:
// the container's name and short ID as DNS names besides the aliases, its
// static addresses, and the MAC address (the service-level one goes to the
// first network).
func attachment(c container.Container, a container.Attachment, i int) (network.Attachment, error) {
	att := network.Attachment{Name: c.Name, Aliases: append([]string{c.ShortID()}, a.Aliases...)}
	var err error
	where := func(key string) string { return fmt.Sprintf("container %s: network %q: %s", c.Name, a.Network, key) }
	if a.IPv4Address != "" {
		if att.IPv4, err = netip.ParseAddr(a.IPv4Address); err != nil || !att.IPv4.Is4() {
			return att, fmt.Errorf("%s %q is not an ipv4 address: %w", where("ipv4_address"), a.IPv4Address, errdefs.ErrInvalidArgument)
		}
	}
	if a.IPv6Address != "" {
		if att.IPv6, err = netip.ParseAddr(a.IPv6Address); err != nil || !att.IPv6.Is6() {
			return att, fmt.Errorf("%s %q is not an ipv6 address: %w", where("ipv6_address"), a.IPv6Address, errdefs.ErrInvalidArgument)
		}
	}
	mac := a.MacAddress
	if mac == "" && i == 0 {
		mac = c.Config.Net.MacAddress
	}
	if mac != "" {
		if att.MAC, err = net.ParseMAC(mac); err != nil || len(att.MAC) != 6 {
			return att, fmt.Errorf("%s %q is not a mac address: %w", where("mac_address"), mac, errdefs.ErrInvalidArgument)
		}
	}
	return att, nil
}

// publish makes the container's ports reach it through its first network
// that leads out (its address there, both families), each on the network's
// default host address unless the port names one.
func (e *Engine) publish(ctx context.Context, c container.Container, eps []network.Endpoint) error {
	if len(c.Config.Ports) == 0 {
		return nil
	}
	if len(eps) == 0 {
		return fmt.Errorf("container %s publishes ports but has no network: %w", c.Name, errdefs.ErrInvalidArgument)
	}
	ep := eps[0]
	var hostIP netip.Addr
	for _, cand := range eps {
		n, err := e.Networks.Get(ctx, cand.Network)
		if err == nil && !n.Internal {
			ep, hostIP = cand, n.HostIP
			break
		}
	}
	ports, err := toNetworkPorts(c.Config.Ports, hostIP)
	if err != nil {
		return err
	}
	if _, err := e.Networks.Publish(ctx, c.ID, network.Target{IPv4: ep.IP, IPv6: ep.IP6}, ports); err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	return nil
}

func toNetworkPorts(ps []container.Port, defaultIP netip.Addr) ([]network.Port, error) {
	out := make([]network.Port, 0, len(ps))
	for _, p := range ps {
		np := network.Port{HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(p.Protocol), HostIP: defaultIP}
		if np.Protocol == "" {
			np.Protocol = "tcp"
		}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(strings.Trim(p.HostIP, "[]"))
			if err != nil {
				return nil, fmt.Errorf("port %s: host ip %q: %w", strconv.Itoa(int(p.ContainerPort)), p.HostIP, errdefs.ErrInvalidArgument)
			}
			np.HostIP = ip
		}
		out = append(out, np)
	}
	return out, nil
}

// extraHosts turns "name:address" entries into hosts lines; host-gateway
// stands for gateways, the host's addresses on the container's network.
func extraHosts(entries []string, gateways []netip.Addr) ([]netdns.HostsEntry, error) {
	var out []netdns.HostsEntry
	for _, e := range entries {
		name, addr, ok := strings.Cut(e, ":")
		if !ok {
			name, addr, ok = strings.Cut(e, "=")
		}
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name:address: %w", e, errdefs.ErrInvalidArgument)
		}
		addr = strings.Trim(addr, "[]")
		if addr == "host-gateway" {
			if len(gateways) == 0 {
				return nil, fmt.Errorf("%q: host-gateway needs a network: %w", e, errdefs.ErrInvalidArgument)
			}
			for _, gw := range gateways {
				out = append(out, netdns.HostsEntry{IP: gw, Names: []string{name}})
			}
			continue
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not an ip address: %w", e, addr, errdefs.ErrInvalidArgument)
		}
		out = append(out, netdns.HostsEntry{IP: ip, Names: []string{name}})
	}
	return out, nil
}

// writeEtcFiles writes the container's hostname, hosts and resolv.conf
// in its run directory and returns their bind mounts. They are made anew
// for each start, as Docker rebuilds them (an edit made inside a running
// container lasts until it stops); the run directory, a tmpfs on an
// installed host, holds them with the rest of the start (rootfs, the shim's
// files), so a start creates no inode of them on the state's disk.
func (e *Engine) writeEtcFiles(c container.Container, hostname string, hosts, resolv []byte) ([]specs.Mount, error) {
	dir := e.runDir(c.ID)
	files := map[string][]byte{
		"hostname":    []byte(hostname + "\n"),
		"hosts":       hosts,
		"resolv.conf": resolv,
	}
	var mounts []specs.Mount
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		p := filepath.Join(dir, name)
		if err := writeEtcFile(p, files[name]); err != nil {
			return nil, err
		}
		mounts = append(mounts, etcMount(name, p))
	}
	return mounts, nil
}

// etcMount binds the file at source over /etc/name.
func etcMount(name, source string) specs.Mount {
	return specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: source, Options: []string{"rbind", "rprivate"}}
}

// writeEtcFile puts data at path, an /etc file of a container about to
// start. A new file is written in place: nothing reads it before the start
// is done (the container binds it then, a container joining its namespace
// later still), and a start that fails part way through leaves a file
// that differs from what the next start writes. A file that holds data
// already is left alone (a restart creates nothing); any other is
// replaced whole by a rename, so a container that still has it bound
// never reads it half-written.
func writeEtcFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return nil
		}
		return atomicfile.Replace(path, data, 0o644)
	}
	if err != nil {
		return err
	}
	// The mode first (whatever the umask: the container's users read the
	// file), so that a file whose content is whole has its mode too.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
