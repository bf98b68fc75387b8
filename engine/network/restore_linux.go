package network

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// restore makes the kernel side of a recorded network whole again before a
// container joins it: after a reboot (records survive; bridges, rules,
// sysctls and the rules in the host's firewall do not), a command killed
// while creating the network (the record is written before the bridge), or
// a host firewall reloaded since. The same name, subnets and gateways come
// back, so nothing the records say changes. A network this manager found
// whole a moment ago is not checked again (wholecache.go). n is the
// network as a caller just read it; it is read again before any repair.
func (m *Manager) restore(ctx context.Context, n Network) error {
	if m.checked.fresh(n.Bridge) {
		return nil
	}
	if m.whole(ctx, n) {
		m.checked.mark(n.Bridge)
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
	r, err := m.load(n.Name)
	if err != nil {
		return err
	}
	n = r.Network
	if m.whole(ctx, n) {
		m.checked.mark(n.Bridge)
		return nil // another command restored it meanwhile
	}
	if !bridgeExists(n.Bridge) {
		// While the bridge was gone, something else may have taken a subnet.
		taken, err := hostPrefixes()
		if err != nil {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
		for _, g := range gatewayPrefixes(n) {
			if t, clash := firstOverlap(g.Masked(), taken); clash {
				return fmt.Errorf("network %q: its subnet %s is now used by %s on this host; remove the project (down) and bring it up again: %w",
					n.Name, g.Masked(), t, errdefs.ErrConflict)
			}
		}
		if err := createBridge(n); err != nil {
			_ = deleteLink(n.Bridge)
			return fmt.Errorf("network %q: restore: %w", n.Name, err)
		}
	} else if err := completeBridge(n); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	// The network's rules may be partly there: drop any, then add the full
	// set once.
	if err := m.fw.removeNetwork(n); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	if err := m.addRules(ctx, n); err != nil {
		return fmt.Errorf("network %q: restore: %w", n.Name, err)
	}
	m.checked.mark(n.Bridge)
	return nil
}

// whole reports whether the network's bridge is up with its gateway
// addresses, its rules are in the table and the host's firewall (firewalld
// included) lets its traffic through.
func (m *Manager) whole(ctx context.Context, n Network) bool {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil || link.Attrs().Flags&unix.IFF_UP == 0 {
		return false
	}
	for _, g := range gatewayPrefixes(n) {
		if !hasAddr(link, g.Addr()) {
			return false
		}
	}
	return m.fw.hasNetwork(n) && m.host.present(ctx, n.Bridge) && firewalldTrusted(ctx, n.Bridge)
}
