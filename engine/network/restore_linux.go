package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/lockfile"
)

// restore brings back the kernel side of a recorded network whose bridge is
// gone, as after a reboot: the records in the state dir survive, bridges,
// rules and sysctls do not. The same name, subnet and gateway come back, so
// nothing the records say changes.
func (m *Manager) restore(ctx context.Context, network string) error {
	r, err := m.load(network)
	if err != nil {
		return err
	}
	if bridgeExists(r.Network.Bridge) {
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
	if bridgeExists(n.Bridge) {
		return nil // another command restored it meanwhile
	}
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
	if err := createBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits())); err != nil {
		_ = deleteLink(n.Bridge)
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	// Rules tagged with the network may have survived (the table was not
	// flushed) or not: drop any, then add the full set once.
	if err := m.fw.removeTagged(ctx, netTag(n.ID)); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	if err := m.fw.addNetwork(ctx, n); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	return writeSysctl("net/ipv4/ip_forward", "1")
}

func bridgeExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil || !errors.As(err, new(netlink.LinkNotFoundError))
}
