package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// restore makes the kernel side of a recorded network whole again before a
// container joins it: after a reboot (records survive, bridges, rules and
// sysctls do not) or a command killed while creating the network (the record
// is written before the bridge). The same name, subnet and gateway come
// back, so nothing the records say changes.
func (m *Manager) restore(ctx context.Context, network string) error {
	r, err := m.load(network)
	if err != nil {
		return err
	}
	if m.whole(r.Network) {
		return nil
	}
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	hl, err := lockfile.Acquire(ctx, hostIPAMLock)
	if err != nil {
		return err
	}
	defer hl.Unlock()
	if r, err = m.load(network); err != nil {
		return err
	}
	n := r.Network
	if m.whole(n) {
		return nil // another command restored it meanwhile
	}
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
	if !bridgeExists(n.Bridge) {
		// While the bridge was gone, something else may have taken the subnet.
		taken, err := hostPrefixes()
		if err != nil {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
		for _, t := range taken {
			if t.Overlaps(n.Subnet) {
				return fmt.Errorf("network %q: its subnet %s is now used by %s on this host; remove the project (down) and bring it up again: %w",
					n.Name, n.Subnet, t, errdefs.ErrConflict)
			}
		}
		if err := createBridge(n.Bridge, gw); err != nil {
			_ = deleteLink(n.Bridge)
			return fmt.Errorf("network %q: restore: %w", n.Name, err)
		}
	} else if err := completeBridge(n.Bridge, gw); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	// Rules tagged with the network may be partly there: drop any, then
	// add the full set once.
	if err := m.fw.removeTagged(ctx, netTag(n.ID)); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	if err := m.fw.addNetwork(ctx, n); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	return writeSysctl("net/ipv4/ip_forward", "1")
}

// whole reports whether the network's bridge is up with its gateway address
// and its rules are in the table.
func (m *Manager) whole(n Network) bool {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil || link.Attrs().Flags&unix.IFF_UP == 0 || !hasAddr(link, n.Gateway) {
		return false
	}
	return m.fw.hasTagged(chainNetsForward, netTag(n.ID))
}

// completeBridge finishes a bridge whose creation was interrupted: the
// sysctl, the gateway address and the up state, each only if missing.
func completeBridge(name string, gw netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := writeSysctl(filepath.Join("net/ipv4/conf", name, "route_localnet"), "1"); err != nil {
		return err
	}
	if !hasAddr(link, gw.Addr()) {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(gw)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bridge %s: add address %s: %w", name, gw, err)
		}
	}
	return netlink.LinkSetUp(link)
}

func hasAddr(link netlink.Link, a netip.Addr) bool {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if got, ok := netip.AddrFromSlice(x.IP); ok && got.Unmap() == a {
			return true
		}
	}
	return false
}

func bridgeExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil || !errors.As(err, new(netlink.LinkNotFoundError))
}
