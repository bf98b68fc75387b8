package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Connect attaches the container's sandbox to network: next free address,
// a veth whose host end joins the bridge and whose peer becomes ethN in the
// sandbox, and (for the first non-internal network) the default route.
// Internal networks never get the default route: nothing leaves through them.
func (m *Manager) Connect(ctx context.Context, network, containerID, sandboxPath string, aliases []string) (Endpoint, error) {
	if err := checkContainerID(containerID); err != nil {
		return Endpoint{}, err
	}
	if err := m.restore(ctx, network); err != nil {
		return Endpoint{}, err
	}
	ep, bridge, err := m.reserve(ctx, network, containerID, aliases)
	if err != nil {
		return Endpoint{}, err
	}
	if err := plumb(ep, bridge, sandboxPath); err != nil {
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
func (m *Manager) reserve(ctx context.Context, network, containerID string, aliases []string) (ep endpointRecord, bridge string, err error) {
	l, err := m.lock(ctx)
	if err != nil {
		return endpointRecord{}, "", err
	}
	defer l.Unlock()
	r, err := m.load(network)
	if err != nil {
		return endpointRecord{}, "", err
	}
	if _, ok := r.Endpoints[containerID]; ok {
		return endpointRecord{}, "", fmt.Errorf("container %s on network %q: %w", containerID, network, errdefs.ErrAlreadyExists)
	}
	all, err := m.loadAll()
	if err != nil {
		return endpointRecord{}, "", err
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
	used := map[netip.Addr]bool{}
	for _, e := range r.Endpoints {
		used[e.IP] = true
	}
	ip, err := nextAddr(r.Network.Subnet, used)
	if err != nil {
		return endpointRecord{}, "", fmt.Errorf("network %q: %w", network, err)
	}
	suffix, err := randomHex(5)
	if err != nil {
		return endpointRecord{}, "", err
	}
	ep = endpointRecord{
		Endpoint: Endpoint{
			Network:     network,
			ContainerID: containerID,
			IfName:      ifName,
			HostVeth:    "vberth" + suffix[:9],
			IP:          ip,
			Prefix:      r.Network.Subnet,
			Gateway:     r.Network.Gateway,
			MAC:         macFor(ip).String(),
			Aliases:     slices.Clone(aliases),
		},
		DefaultRoute: !hasDefault && !r.Network.Internal,
	}
	r.Endpoints[containerID] = ep
	if err := m.save(r); err != nil {
		return endpointRecord{}, "", err
	}
	return ep, r.Network.Bridge, nil
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
// peer's name never exists (or collides) in the host namespace.
func plumb(ep endpointRecord, bridge, sandboxPath string) error {
	ns, err := netns.GetFromPath(sandboxPath)
	if err != nil {
		return fmt.Errorf("open sandbox %s: %w", sandboxPath, err)
	}
	defer ns.Close()
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostVeth, MasterIndex: br.Attrs().Index},
		PeerName:         ep.IfName,
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerHardwareAddr: macFor(ep.IP),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	host, err := netlink.LinkByName(ep.HostVeth)
	if err != nil {
		return fmt.Errorf("veth %s: %w", ep.HostVeth, err)
	}
	// Hairpin lets a container reach itself through its own published port.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("veth %s: hairpin: %w", ep.HostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s: up: %w", ep.HostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in sandbox: %w", err)
	}
	defer h.Close()
	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", ep.IfName, err)
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(ep.IP, ep.Prefix.Bits()))}); err != nil {
		return fmt.Errorf("sandbox %s: address %s: %w", ep.IfName, ep.IP, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("sandbox %s: up: %w", ep.IfName, err)
	}
	if ep.DefaultRoute {
		rt := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: ep.Gateway.AsSlice()}
		if err := h.RouteAdd(rt); err != nil {
			return fmt.Errorf("sandbox %s: default route via %s: %w", ep.IfName, ep.Gateway, err)
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
