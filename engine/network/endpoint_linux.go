package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attachment says how a container joins a network.
type Attachment struct {
	// Name is the container's name: a DNS name on the network, and the key
	// under which its addresses are remembered for the next container of
	// that name (a recreate).
	Name    string
	Aliases []string // more DNS names on this network
	// IPv4 and IPv6 are static addresses (ipv4_address, ipv6_address).
	IPv4, IPv6 netip.Addr
	MAC        net.HardwareAddr // derived from the IPv4 address when nil
	// NoDefaultRoute keeps the default route off this network even when
	// it is the container's first non-internal one.
	NoDefaultRoute bool
}

// Connect attaches the container's sandbox to network: its addresses, a
// veth whose host end joins the bridge and whose peer becomes ethN in the
// sandbox, and (for the first non-internal network) the default routes.
// Internal networks never get the default route: nothing leaves through
// them. A static address outside the subnet is errdefs.ErrInvalidArgument;
// one in use, errdefs.ErrConflict.
func (m *Manager) Connect(ctx context.Context, network, containerID, sandboxPath string, a Attachment) (Endpoint, error) {
	if err := checkContainerID(containerID); err != nil {
		return Endpoint{}, err
	}
	// The reservation reads the record the check of the bridge and the
	// firewall needs; a repair changes nothing the reservation used.
	ep, n, err := m.reserve(ctx, network, containerID, a)
	if err != nil {
		return Endpoint{}, err
	}
	if err := m.restore(ctx, n); err != nil {
		return Endpoint{}, errors.Join(err, m.release(context.WithoutCancel(ctx), network, containerID))
	}
	if err := plumb(ep, n, sandboxPath); err != nil {
		_ = deleteLink(ep.HostVeth)
		if uerr := m.release(context.WithoutCancel(ctx), network, containerID); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return Endpoint{}, fmt.Errorf("connect %s to network %q: %w", containerID, network, err)
	}
	return ep.Endpoint, nil
}

// reserve records the endpoint under the lock, so concurrent connects get
// distinct addresses and interface names; the slow kernel work happens
// after the lock is released.
func (m *Manager) reserve(ctx context.Context, network, containerID string, a Attachment) (endpointRecord, Network, error) {
	l, err := m.lock(ctx)
	if err != nil {
		return endpointRecord{}, Network{}, err
	}
	defer l.Unlock()
	r, err := m.load(network)
	if err != nil {
		return endpointRecord{}, Network{}, err
	}
	if _, ok := r.Endpoints[containerID]; ok {
		return endpointRecord{}, Network{}, fmt.Errorf("container %s on network %q: %w", containerID, network, errdefs.ErrAlreadyExists)
	}
	all, err := m.loadAll(r)
	if err != nil {
		return endpointRecord{}, Network{}, err
	}
	ifUsed := map[string]bool{}
	hasDefault := false
	for _, o := range all {
		if e, ok := o.Endpoints[containerID]; ok {
			ifUsed[e.IfName] = true
			hasDefault = hasDefault || e.DefaultRoute
		}
	}
	ifName := ""
	for i := 0; ifName == ""; i++ {
		if n := "eth" + strconv.Itoa(i); !ifUsed[n] {
			ifName = n
		}
	}
	used, others := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, e := range r.Endpoints {
		used[e.IP], used[e.IP6] = true, true
	}
	for name, last := range r.Last {
		if name != a.Name {
			others[last.IP], others[last.IP6] = true, true
		}
	}
	n := r.Network
	last := r.Last[a.Name]
	ip, err := nextAddr(n.IPv4(), used, others, a.IPv4, last.IP)
	if err != nil {
		return endpointRecord{}, Network{}, fmt.Errorf("network %q: ipv4: %w", network, err)
	}
	var ip6 netip.Addr
	if n.IPv6 != nil {
		if ip6, err = nextAddr(*n.IPv6, used, others, a.IPv6, last.IP6); err != nil {
			return endpointRecord{}, Network{}, fmt.Errorf("network %q: ipv6: %w", network, err)
		}
	} else if a.IPv6.IsValid() {
		return endpointRecord{}, Network{}, fmt.Errorf("network %q: ipv6 address %s, but the network has no ipv6 (enable_ipv6): %w", network, a.IPv6, errdefs.ErrInvalidArgument)
	}
	mac := a.MAC
	if mac == nil {
		mac = macFor(ip)
	}
	suffix, err := randomHex(5)
	if err != nil {
		return endpointRecord{}, Network{}, err
	}
	ep := endpointRecord{
		Endpoint: Endpoint{
			Network:     network,
			ContainerID: containerID,
			Name:        a.Name,
			IfName:      ifName,
			HostVeth:    "vberth" + suffix[:9],
			IP:          ip,
			Prefix:      n.Subnet,
			Gateway:     n.Gateway,
			MAC:         mac.String(),
			Aliases:     slices.Clone(a.Aliases),
		},
		DefaultRoute: !hasDefault && !n.Internal && !a.NoDefaultRoute,
	}
	if ip6.IsValid() {
		ep.IP6, ep.Prefix6, ep.Gateway6 = ip6, n.IPv6.Subnet, n.IPv6.Gateway
	}
	r.Endpoints[containerID] = ep
	if a.Name != "" {
		r.Last[a.Name] = lastAddrs{IP: ip, IP6: ip6}
	}
	if err := m.save(r); err != nil {
		return endpointRecord{}, Network{}, err
	}
	return ep, n, nil
}

func (m *Manager) release(ctx context.Context, network, containerID string) error {
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := m.load(network)
	if err != nil {
		return err
	}
	if _, ok := r.Endpoints[containerID]; !ok {
		return nil
	}
	delete(r.Endpoints, containerID)
	return m.save(r)
}

// macFor derives a locally administered MAC from the address, as Docker
// does, so neighbours' caches stay right when an address is reused.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// plumb creates the veth with its peer directly inside the sandbox, so the
// peer's name never exists (or collides) in the host namespace. The host
// side's requests share one netlink socket, and the veth is created up: its
// peer stays down, without an address, until configureSandbox, so no frame
// crosses it before it is a port of the bridge with its settings.
func plumb(ep endpointRecord, n Network, sandboxPath string) error {
	ns, err := netns.GetFromPath(sandboxPath)
	if err != nil {
		return fmt.Errorf("open sandbox %s: %w", sandboxPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	br, err := h.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("mac address %q: %w", ep.MAC, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostVeth, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU, Flags: net.FlagUp},
		PeerName:         ep.IfName,
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerHardwareAddr: mac,
		PeerMTU:          uint32(br.Attrs().MTU),
	}
	// LinkAdd looks the new link up and fills in veth's index.
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	// Hairpin lets a container reach itself through its own published port.
	if err := h.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("veth %s: hairpin: %w", ep.HostVeth, err)
	}
	if n.NoICC {
		// Isolated bridge ports do not forward to one another, only to the
		// bridge itself: containers of the network reach the host and the
		// outside, never each other (enable_icc: false).
		if err := h.LinkSetIsolated(veth, true); err != nil {
			return fmt.Errorf("veth %s: isolate: %w", ep.HostVeth, err)
		}
	}
	return inSandbox(ns, func() error { return configureSandbox(ep) })
}

// configureSandbox gives the peer its addresses and routes inside; it runs
// on a thread in the sandbox's namespace (inSandbox), where both its
// netlink socket and /proc/sys/net are the sandbox's.
func configureSandbox(ep endpointRecord) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in sandbox: %w", err)
	}
	defer h.Close()
	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", ep.IfName, err)
	}
	// No IPv6 on a network without it: not even a link-local address, as
	// Docker. A sandbox starts with IPv6 off for new interfaces
	// (disableIPv6ByDefault), so this only writes (taking the kernel's
	// RTNL lock) to turn it on, or off in a sandbox made before that.
	disable := "1"
	if ep.IP6.IsValid() {
		disable = "0"
	}
	if err := writeSysctl(filepath.Join("net/ipv6/conf", ep.IfName, "disable_ipv6"), disable); err != nil {
		return err
	}
	addrs := []netlink.Addr{{IPNet: prefixToIPNet(netip.PrefixFrom(ep.IP, ep.Prefix.Bits()))}}
	if ep.IP6.IsValid() {
		addrs = append(addrs, netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(ep.IP6, ep.Prefix6.Bits())), Flags: unix.IFA_F_NODAD})
	}
	for _, a := range addrs {
		if err := h.AddrAdd(peer, &a); err != nil {
			return fmt.Errorf("sandbox %s: address %s: %w", ep.IfName, a.IPNet, err)
		}
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("sandbox %s: up: %w", ep.IfName, err)
	}
	if ep.DefaultRoute {
		gws := []netip.Addr{ep.Gateway}
		if ep.IP6.IsValid() {
			gws = append(gws, ep.Gateway6)
		}
		for _, gw := range gws {
			rt := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice()}
			if err := h.RouteAdd(rt); err != nil {
				return fmt.Errorf("sandbox %s: default route via %s: %w", ep.IfName, gw, err)
			}
		}
	}
	return nil
}

// Disconnect removes the container from network: host veth (and with it the
// peer) and the address reservation. A container not connected is fine.
func (m *Manager) Disconnect(ctx context.Context, network, containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	// Deleting a veth waits on the kernel for tens of milliseconds; doing it
	// before taking the lock lets the teardowns of a whole stack overlap.
	// The address stays reserved until the record changes below, so it is
	// not handed out while the old link still exists.
	if r, err := m.load(network); err == nil {
		if ep, ok := r.Endpoints[containerID]; ok {
			if err := deleteLink(ep.HostVeth); err != nil {
				return fmt.Errorf("disconnect %s from network %q: %w", containerID, network, err)
			}
		}
	}
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := m.load(network)
	if err != nil {
		return err
	}
	ep, ok := r.Endpoints[containerID]
	if !ok {
		return nil
	}
	// Idempotent: gone already when the step above deleted it.
	if err := deleteLink(ep.HostVeth); err != nil {
		return fmt.Errorf("disconnect %s from network %q: %w", containerID, network, err)
	}
	delete(r.Endpoints, containerID)
	return m.save(r)
}

// Endpoints lists the containers connected to network, by address.
func (m *Manager) Endpoints(ctx context.Context, network string) ([]Endpoint, error) {
	r, err := m.load(network)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(r.Endpoints))
	for _, e := range r.Endpoints {
		out = append(out, e.Endpoint)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return a.IP.Compare(b.IP) })
	return out, nil
}
