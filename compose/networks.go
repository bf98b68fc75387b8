package compose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/network"
)

// NetworkCreateOptions are berth network create's flags, as docker network
// create spells them.
type NetworkCreateOptions struct {
	Name       string
	Driver     string
	Subnets    []string
	Gateways   []string // in subnet order
	IPRanges   []string // in subnet order
	AuxAddress []string // name=address, in the subnet of its family
	IPAMDriver string
	Internal   bool
	IPv6       bool
	Attachable bool
	Labels     map[string]string
	Options    map[string]string // driver options (-o)
}

// NetworkCreate creates a network outside any project, for projects to
// use as external.
func NetworkCreate(ctx context.Context, e *engine.Engine, o NetworkCreateOptions) (network.Network, error) {
	n := types.NetworkConfig{Name: o.Name, Driver: o.Driver, DriverOpts: o.Options, Internal: o.Internal, Attachable: o.Attachable,
		Ipam: types.IPAMConfig{Driver: o.IPAMDriver}}
	if o.IPv6 {
		n.EnableIPv6 = &o.IPv6
	}
	if len(o.Gateways) > len(o.Subnets) || len(o.IPRanges) > len(o.Subnets) {
		return network.Network{}, fmt.Errorf("network %q: each --gateway and --ip-range needs a --subnet: %w", o.Name, errdefs.ErrInvalidArgument)
	}
	for i, sub := range o.Subnets {
		pool := &types.IPAMPool{Subnet: sub}
		if i < len(o.Gateways) {
			pool.Gateway = o.Gateways[i]
		}
		if i < len(o.IPRanges) {
			pool.IPRange = o.IPRanges[i]
		}
		n.Ipam.Config = append(n.Ipam.Config, pool)
	}
	for _, a := range o.AuxAddress {
		name, addr, ok := strings.Cut(a, "=")
		ip, err := netip.ParseAddr(addr)
		if !ok || err != nil {
			return network.Network{}, fmt.Errorf("network %q: --aux-address %q is not name=address: %w", o.Name, a, errdefs.ErrInvalidArgument)
		}
		placed := false
		for _, pool := range n.Ipam.Config {
			if sub, err := netip.ParsePrefix(pool.Subnet); err == nil && sub.Contains(ip) {
				if pool.AuxiliaryAddresses == nil {
					pool.AuxiliaryAddresses = types.Mapping{}
				}
				pool.AuxiliaryAddresses[name] = addr
				placed = true
			}
		}
		if !placed {
			return network.Network{}, fmt.Errorf("network %q: --aux-address %q is in no --subnet: %w", o.Name, a, errdefs.ErrInvalidArgument)
		}
	}
	s, err := networkSpec(o.Name, n, o.Labels, nil)
	if err != nil {
		return network.Network{}, err
	}
	if err := e.Networks.CheckAvailable(ctx, s); err != nil {
		return network.Network{}, fmt.Errorf("network %q: %w", o.Name, err)
	}
	return e.CreateNetwork(ctx, s)
}

// NetworkSummary is one row of berth network ls, as docker network ls
// shows it.
type NetworkSummary struct {
	ID, Name, Driver, Scope string
	IPv6, Internal          bool
	Labels                  string
	CreatedAt               string
}

// NetworkList lists every network of the engine.
func NetworkList(ctx context.Context, e *engine.Engine) ([]NetworkSummary, error) {
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []NetworkSummary
	for _, n := range nets {
		var labels []string
		for _, k := range slices.Sorted(mapKeys(n.Labels)) {
			labels = append(labels, k+"="+n.Labels[k])
		}
		out = append(out, NetworkSummary{ID: n.ID[:12], Name: n.Name, Driver: "bridge", Scope: "local", IPv6: n.IPv6 != nil,
			Internal: n.Internal, Labels: strings.Join(labels, ","), CreatedAt: n.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")})
	}
	return out, nil
}

// NetworkInspectResult is one network as docker network inspect shows it.
type NetworkInspectResult struct {
	Name       string
	ID         string `json:"Id"`
	Created    string
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       struct {
		Driver string
		Config []IPAMConfig
	}
	Internal   bool
	Attachable bool
	Containers map[string]NetworkEndpoint
	Options    map[string]string
	Labels     map[string]string
}

// IPAMConfig is one subnet of NetworkInspectResult.
type IPAMConfig struct {
	Subnet             string
	IPRange            string            `json:",omitempty"`
	Gateway            string            `json:",omitempty"`
	AuxiliaryAddresses map[string]string `json:",omitempty"`
}

// NetworkEndpoint is one container of NetworkInspectResult.
type NetworkEndpoint struct {
	Name        string
	MacAddress  string
	IPv4Address string
	IPv6Address string
}

// NetworkInspect describes the named networks.
func NetworkInspect(ctx context.Context, e *engine.Engine, names []string) ([]NetworkInspectResult, error) {
	var out []NetworkInspectResult
	for _, name := range names {
		info, err := e.InspectNetwork(ctx, name)
		if err != nil {
			return nil, err
		}
		n := info.Network
		r := NetworkInspectResult{Name: n.Name, ID: n.ID, Created: n.Created.Format("2006-01-02T15:04:05.999999999Z07:00"), Scope: "local", Driver: "bridge",
			EnableIPv6: n.IPv6 != nil, Internal: n.Internal, Attachable: n.Attachable, Containers: map[string]NetworkEndpoint{}, Options: n.Options, Labels: n.Labels}
		r.IPAM.Driver = "default"
		ipams := []network.IPAM{n.IPv4()}
		if n.IPv6 != nil {
			ipams = append(ipams, *n.IPv6)
		}
		for _, c := range ipams {
			ic := IPAMConfig{Subnet: c.Subnet.String(), Gateway: c.Gateway.String()}
			if c.Range.IsValid() {
				ic.IPRange = c.Range.String()
			}
			for k, a := range c.Aux {
				if ic.AuxiliaryAddresses == nil {
					ic.AuxiliaryAddresses = map[string]string{}
				}
				ic.AuxiliaryAddresses[k] = a.String()
			}
			r.IPAM.Config = append(r.IPAM.Config, ic)
		}
		for _, c := range info.Containers {
			ep := NetworkEndpoint{Name: c.Name, MacAddress: c.MAC, IPv4Address: c.IPv4.String()}
			if c.IPv6.IsValid() {
				ep.IPv6Address = c.IPv6.String()
			}
			r.Containers[c.ID] = ep
		}
		out = append(out, r)
	}
	return out, nil
}

// NetworkRemove removes the named networks; one that a container uses,
// running or not, is refused with the containers named.
func NetworkRemove(ctx context.Context, e *engine.Engine, names []string) error {
	var errs []error
	for _, name := range names {
		users, err := e.NetworkUsers(ctx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			errs = append(errs, fmt.Errorf("network %q is used by containers %s; remove them first: %w", name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition))
			continue
		}
		if err := e.RemoveNetwork(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NetworkPrune removes every network no container uses.
func NetworkPrune(ctx context.Context, e *engine.Engine) ([]string, error) {
	return e.PruneNetworks(ctx)
}

// PortOptions select the container and port of berth port.
type PortOptions struct {
	Service  string
	Port     string // PRIVATE_PORT, or PRIVATE_PORT/PROTOCOL
	Protocol string // tcp (default) or udp
	Index    int    // replica number; 0 means 1
}

// Port returns the public address of a service container's published
// port ("0.0.0.0:32768"), as docker compose port prints it.
func Port(ctx context.Context, e *engine.Engine, project string, o PortOptions) (string, error) {
	proto := o.Protocol
	num := o.Port
	if n, p, ok := strings.Cut(o.Port, "/"); ok {
		num, proto = n, p
	}
	if proto == "" {
		proto = "tcp"
	}
	private, err := strconv.ParseUint(num, 10, 16)
	if err != nil || private == 0 {
		return "", fmt.Errorf("port %q is not a port number: %w", o.Port, errdefs.ErrInvalidArgument)
	}
	index := max(o.Index, 1)
	infos, err := projectContainers(ctx, e, project, withoutOneOff, o.Service)
	if err != nil {
		return "", err
	}
	for _, i := range infos {
		if n, _ := strconv.Atoi(i.Config.Labels[LabelNumber]); n != index {
			continue
		}
		ps, err := e.PublishedPorts(ctx, i.ID)
		if err != nil {
			return "", err
		}
		for _, p := range ps {
			if uint64(p.ContainerPort) == private && p.Protocol == proto {
				return hostAddress(p), nil
			}
		}
		return "", fmt.Errorf("no port %d/%s published for container %s: %w", private, proto, i.Name, errdefs.ErrNotFound)
	}
	return "", fmt.Errorf("service %q has no container number %d: %w", o.Service, index, errdefs.ErrNotFound)
}

// hostIPs are the host addresses a published port listens on, as Docker
// shows them: the one given, or 0.0.0.0 and :: for the families reaching
// the container.
func hostIPs(p network.Published) []netip.Addr {
	if p.HostIP.IsValid() {
		return []netip.Addr{p.HostIP}
	}
	var out []netip.Addr
	if p.IPv4 {
		out = append(out, netip.IPv4Unspecified())
	}
	if p.IPv6 {
		out = append(out, netip.IPv6Unspecified())
	}
	return out
}

// hostAddress prints a published port's (first) host side as Docker does.
func hostAddress(p network.Published) string {
	ips := hostIPs(p)
	if len(ips) == 0 {
		ips = []netip.Addr{netip.IPv4Unspecified()}
	}
	return netip.AddrPortFrom(ips[0], p.HostPort).String()
}

// withPorts shows a running container's ports as they are published now
// (a port given without a host port shows the one it got), as docker
// compose ps does; a stopped container publishes none; exposed ports follow.
// published holds every running container's published ports, by ID.
func withPorts(s ContainerSummary, i engine.Info, published map[string][]network.Published) ContainerSummary {
	s.Publishers = nil
	var ps []network.Published
	if i.Running() {
		ps = published[i.ID]
	}
	var texts []string
	for _, p := range ps {
		for _, ip := range hostIPs(p) {
			s.Publishers = append(s.Publishers, PortPublisher{ip.String(), p.ContainerPort, p.HostPort, p.Protocol})
			texts = append(texts, fmt.Sprintf("%s->%d/%s", netip.AddrPortFrom(ip, p.HostPort), p.ContainerPort, p.Protocol))
		}
	}
	s.Ports = strings.Join(withExposed(&s, i.Config, texts), ", ")
	return s
}
