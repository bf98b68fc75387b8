package network

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// ParsePools reads pools as BERTH_NETWORK_POOL spells them: comma-separated
// IPv4 or IPv6 prefixes, each optionally followed by "/size", the prefix
// length of the subnets cut from it (24 for IPv4 and 64 for IPv6 when
// left out): "10.89.0.0/16,10.90.0.0/16/26,fd00:1::/48/64".
func ParsePools(s string) ([]Pool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Pool
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		base, size := part, ""
		if strings.Count(part, "/") == 2 {
			i := strings.LastIndexByte(part, '/')
			base, size = part[:i], part[i+1:]
		}
		p, err := netip.ParsePrefix(base)
		if err != nil {
			return nil, fmt.Errorf("pool %q is not a prefix: %w", part, errdefs.ErrInvalidArgument)
		}
		pool := Pool{Base: p, Size: 24}
		if p.Addr().Is6() {
			pool.Size = 64
		}
		if size != "" {
			if pool.Size, err = strconv.Atoi(size); err != nil {
				return nil, fmt.Errorf("pool %q: subnet size %q is not a number: %w", part, size, errdefs.ErrInvalidArgument)
			}
		} else {
			pool.Size = max(pool.Size, p.Bits()) // a pool narrower than the default size is one subnet
		}
		if err := checkPool(pool); err != nil {
			return nil, err
		}
		out = append(out, pool)
	}
	return out, nil
}

func checkPool(p Pool) error {
	if !p.Base.IsValid() || p.Base.Masked() != p.Base {
		return fmt.Errorf("pool %s: not a prefix without host bits: %w", p.Base, errdefs.ErrInvalidArgument)
	}
	limit := maxBits(p.Base.Addr())
	if p.Size < p.Base.Bits() || p.Size > limit {
		return fmt.Errorf("pool %s: subnet size /%d must be between /%d and /%d: %w", p.Base, p.Size, p.Base.Bits(), limit, errdefs.ErrInvalidArgument)
	}
	return nil
}

// maxBits is the longest prefix that still holds a gateway and a container.
func maxBits(a netip.Addr) int {
	if a.Is4() {
		return 30
	}
	return 126
}

// CheckSpec reports what is wrong with a network spec on its own: subnets,
// ranges, gateways and reserved addresses that do not fit together. Whether
// a subnet is free on this host is for Create to tell.
func CheckSpec(s Spec) error {
	if err := checkIPAM(s.Name, "ipv4", s.IPv4, false); err != nil {
		return err
	}
	if !s.EnableIPv6 && (s.IPv6.Subnet.IsValid() || s.IPv6.Gateway.IsValid() || s.IPv6.Range.IsValid()) {
		return fmt.Errorf("network %q: an ipv6 subnet needs enable_ipv6: %w", s.Name, errdefs.ErrInvalidArgument)
	}
	if err := checkIPAM(s.Name, "ipv6", s.IPv6, true); err != nil {
		return err
	}
	if s.MTU < 0 || (s.MTU > 0 && s.MTU < 68) || s.MTU > 65535 {
		return fmt.Errorf("network %q: mtu %d out of range 68..65535: %w", s.Name, s.MTU, errdefs.ErrInvalidArgument)
	}
	if s.Bridge != "" && (len(s.Bridge) > 15 || strings.ContainsAny(s.Bridge, "/ \t\n\x00:")) {
		return fmt.Errorf("network %q: bridge name %q is not a valid interface name: %w", s.Name, s.Bridge, errdefs.ErrInvalidArgument)
	}
	if s.HostIP.IsValid() && !s.HostIP.Is4() {
		return fmt.Errorf("network %q: host binding address %s is not ipv4: %w", s.Name, s.HostIP, errdefs.ErrInvalidArgument)
	}
	for _, p := range s.Pools {
		if err := checkPool(p); err != nil {
			return fmt.Errorf("network %q: %w", s.Name, err)
		}
	}
	return nil
}

func checkIPAM(network, family string, c IPAM, v6 bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("network %q: %s %s: %w", network, family, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	fam := func(a netip.Addr) bool {
		if v6 {
			return a.Is6() && !a.Is4In6()
		}
		return a.Is4()
	}
	if !c.Subnet.IsValid() {
		switch {
		case c.Range.IsValid():
			return bad("ip_range %s needs a subnet", c.Range)
		case c.Gateway.IsValid():
			return bad("gateway %s needs a subnet", c.Gateway)
		case len(c.Aux) > 0:
			return bad("aux_addresses need a subnet")
		}
		return nil
	}
	sub := c.Subnet
	if !fam(sub.Addr()) {
		return bad("subnet %s is not an %s prefix", sub, family)
	}
	if sub.Masked() != sub {
		return bad("subnet %s has host bits set (did you mean %s?)", sub, sub.Masked())
	}
	if lo := 8; sub.Bits() < lo || sub.Bits() > maxBits(sub.Addr()) {
		return bad("subnet %s must be between /%d and /%d", sub, lo, maxBits(sub.Addr()))
	}
	if c.Range.IsValid() {
		if !fam(c.Range.Addr()) || c.Range.Masked() != c.Range || !sub.Contains(c.Range.Addr()) || c.Range.Bits() < sub.Bits() {
			return bad("ip_range %s is not a prefix inside subnet %s", c.Range, sub)
		}
	}
	if c.Gateway.IsValid() && !hostAddrIn(sub, c.Gateway) {
		return bad("gateway %s is not a host address of subnet %s", c.Gateway, sub)
	}
	for _, name := range slices.Sorted(mapKeys(c.Aux)) {
		if a := c.Aux[name]; !hostAddrIn(sub, a) {
			return bad("aux address %s=%s is not a host address of subnet %s", name, a, sub)
		}
	}
	return nil
}

// hostAddrIn reports whether a is in subnet and is neither its network
// address nor (IPv4) its broadcast address.
func hostAddrIn(subnet netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() || a.Is4() != subnet.Addr().Is4() || !subnet.Contains(a) || a == subnet.Masked().Addr() {
		return false
	}
	return !a.Is4() || a != lastAddr(subnet)
}

// pickSubnet returns the first subnet, walking the pools in order, that
// overlaps none of taken. taken holds this instance's subnets and every
// route and address already on the host, so the choice never shadows a
// network someone else (another Berth instance included) is using.
func pickSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := p.Base.Masked()
		if p.Size < base.Bits() || p.Size > base.Addr().BitLen() {
			continue
		}
		count := new(big.Int).Lsh(big.NewInt(1), uint(p.Size-base.Bits()))
		step := new(big.Int).Lsh(big.NewInt(1), uint(base.Addr().BitLen()-p.Size))
		start := new(big.Int).SetBytes(base.Addr().AsSlice())
		// A subnet that overlaps something lets us skip to past it, so even
		// a huge IPv6 pool is walked in few steps.
		for i := new(big.Int); i.Cmp(count) < 0; {
			cand := netip.PrefixFrom(addrFromInt(new(big.Int).Add(start, new(big.Int).Mul(i, step)), base.Addr().Is4()), p.Size)
			t, clash := firstOverlap(cand, taken)
			if !clash {
				return cand, nil
			}
			// Skip every candidate inside t (when t is larger) or this one.
			next := new(big.Int).Add(i, big.NewInt(1))
			if t.Bits() < p.Size {
				end := new(big.Int).SetBytes(lastAddr(t).AsSlice())
				past := new(big.Int).Sub(end, start)
				past.Div(past, step)
				past.Add(past, big.NewInt(1))
				if past.Cmp(next) > 0 {
					next = past
				}
			}
			i = next
		}
	}
	var s []string
	for _, p := range pools {
		s = append(s, p.String())
	}
	return netip.Prefix{}, fmt.Errorf("no free subnet left in pools %s: %w", strings.Join(s, ", "), errdefs.ErrUnavailable)
}

func firstOverlap(p netip.Prefix, set []netip.Prefix) (netip.Prefix, bool) {
	for _, t := range set {
		if t.IsValid() && t.Addr().Is4() == p.Addr().Is4() && t.Overlaps(p) {
			return t, true
		}
	}
	return netip.Prefix{}, false
}

func addrFromInt(i *big.Int, v4 bool) netip.Addr {
	n := 16
	if v4 {
		n = 4
	}
	b := i.FillBytes(make([]byte, n))
	a, _ := netip.AddrFromSlice(b)
	return a
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nextAddr returns an address for a container: want if it is given (a
// static address: it must be a free host address of the subnet), else prefer
// if it is free (the address the container's name had last), else the
// lowest free address of the range (or subnet) that nobody else had last.
// The gateway, the reserved addresses and the IPv4 broadcast address are
// never handed out.
func nextAddr(c IPAM, used, others map[netip.Addr]bool, want, prefer netip.Addr) (netip.Addr, error) {
	reserved := map[netip.Addr]bool{c.Gateway: true}
	for _, a := range c.Aux {
		reserved[a] = true
	}
	free := func(a netip.Addr) bool { return hostAddrIn(c.Subnet, a) && !used[a] && !reserved[a] }
	if want.IsValid() {
		switch {
		case !hostAddrIn(c.Subnet, want):
			return netip.Addr{}, fmt.Errorf("address %s is not a host address of subnet %s: %w", want, c.Subnet, errdefs.ErrInvalidArgument)
		case reserved[want]:
			return netip.Addr{}, fmt.Errorf("address %s is reserved (gateway or aux address) on subnet %s: %w", want, c.Subnet, errdefs.ErrConflict)
		case used[want]:
			return netip.Addr{}, fmt.Errorf("address %s is already in use: %w", want, errdefs.ErrConflict)
		}
		return want, nil
	}
	if prefer.IsValid() && free(prefer) && (!c.Range.IsValid() || c.Range.Contains(prefer)) {
		return prefer, nil
	}
	from := c.Subnet
	if c.Range.IsValid() {
		from = c.Range
	}
	var fallback netip.Addr
	const scanLimit = 1 << 16 // an IPv6 /64 is never scanned whole
	a := from.Masked().Addr()
	for i := 0; i < scanLimit && from.Contains(a); i, a = i+1, a.Next() {
		if !free(a) {
			continue
		}
		if !others[a] {
			return a, nil
		}
		if !fallback.IsValid() {
			fallback = a
		}
	}
	if fallback.IsValid() {
		return fallback, nil
	}
	return netip.Addr{}, fmt.Errorf("subnet %s: all addresses in use: %w", from, errdefs.ErrUnavailable)
}

func v4ToUint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
