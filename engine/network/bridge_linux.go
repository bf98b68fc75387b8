package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostPrefixes lists every prefix the host already routes or has an address
// in, IPv4 and IPv6, across all routing tables. Addresses count as well as
// routes because a bridge that is down has an address but no connected
// route. Link-local and multicast ranges are left out: they hold no subnet.
func hostPrefixes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		a := p.Addr()
		if p.Bits() > 0 && !a.IsLinkLocalUnicast() && !a.IsMulticast() && !a.IsLoopback() {
			out = append(out, p.Masked())
		}
	}
	for _, r := range routes {
		if p, ok := ipNetToPrefix(r.Dst); ok {
			add(p)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := ipNetToPrefix(a.IPNet); ok {
			add(p)
		}
	}
	return out, nil
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// gatewayPrefixes are the bridge's addresses: each gateway with its
// subnet's length.
func gatewayPrefixes(n Network) []netip.Prefix {
	out := []netip.Prefix{netip.PrefixFrom(n.Gateway, n.Subnet.Bits())}
	if n.IPv6 != nil {
		out = append(out, netip.PrefixFrom(n.IPv6.Gateway, n.IPv6.Subnet.Bits()))
	}
	return out
}

// createBridge makes the network's bridge and completes it.
func createBridge(n Network) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: n.MTU}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
	}
	return completeBridge(n)
}

// completeBridge brings a bridge to what the network needs, each step only
// if it is missing, so it also finishes a bridge whose creation was
// interrupted: 127.0.0.0/8 sources allowed (to DNAT connections to
// 127.0.0.1 into containers), IPv6 on or off, the gateway addresses, up.
func completeBridge(n Network) error {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if err := writeSysctl(filepath.Join("net/ipv4/conf", n.Bridge, "route_localnet"), "1"); err != nil {
		return err
	}
	v6 := "1"
	if n.IPv6 != nil {
		v6 = "0"
	}
	// A bridge of an IPv4-only network carries no IPv6 at all, as Docker's.
	if err := writeSysctl(filepath.Join("net/ipv6/conf", n.Bridge, "disable_ipv6"), v6); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, gw := range gatewayPrefixes(n) {
		if hasAddr(link, gw.Addr()) {
			continue
		}
		a := &netlink.Addr{IPNet: prefixToIPNet(gw)}
		if gw.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once; the subnet is ours
		}
		if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bridge %s: add address %s: %w", n.Bridge, gw, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s: up: %w", n.Bridge, err)
	}
	return nil
}

func hasAddr(link netlink.Link, a netip.Addr) bool {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
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

// deleteLink removes a link by name; a link that is already gone is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if cur, err := os.ReadFile(p); err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
