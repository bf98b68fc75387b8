package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// pickSubnet returns the first subnet of length size, walking the pool in
// order, that overlaps none of taken. taken holds this instance's subnets and
// every route and address already on the host, so the choice never shadows
// a network someone else (another Berth instance included) is using.
func pickSubnet(pool []netip.Prefix, size int, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pool {
		p = p.Masked()
		if !p.Addr().Is4() || size < p.Bits() || size > 32 {
			continue
		}
		base := v4ToUint(p.Addr())
		step := uint64(1) << (32 - size)
		count := uint64(1) << (size - p.Bits())
		for i := range count {
			cand := netip.PrefixFrom(uintToV4(uint32(uint64(base)+i*step)), size)
			if !overlapsAny(cand, taken) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d subnet left in pool %v: %w", size, pool, errdefs.ErrUnavailable)
}

func overlapsAny(p netip.Prefix, set []netip.Prefix) bool {
	for _, t := range set {
		if t.IsValid() && t.Overlaps(p) {
			return true
		}
	}
	return false
}

// nextAddr returns the lowest address of subnet that is neither the network
// address, the gateway (first host), the broadcast address nor in used.
func nextAddr(subnet netip.Prefix, used map[netip.Addr]bool) (netip.Addr, error) {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("subnet %s: no host addresses: %w", subnet, errdefs.ErrInvalidArgument)
	}
	first := v4ToUint(subnet.Addr())
	last := first | (uint32(1)<<(32-subnet.Bits()) - 1)
	for a := first + 2; a < last; a++ {
		ip := uintToV4(a)
		if !used[ip] {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s: all addresses in use: %w", subnet, errdefs.ErrUnavailable)
}

func v4ToUint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uintToV4(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}
