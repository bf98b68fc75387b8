package network

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/containerd/errdefs"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestPickSubnet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		pool  []netip.Prefix
		size  int
		taken []netip.Prefix
		want  string
		err   error
	}{
		{"empty host", pfx("10.89.0.0/16"), 24, nil, "10.89.0.0/24", nil},
		{"skips used", pfx("10.89.0.0/16"), 24, pfx("10.89.0.0/24", "10.89.1.0/24"), "10.89.2.0/24", nil},
		{"skips overlapping host route", pfx("10.89.0.0/16"), 24, pfx("10.89.0.0/23", "10.89.2.128/25"), "10.89.3.0/24", nil},
		{"wide route covers pool", pfx("10.89.0.0/16", "10.90.0.0/16"), 24, pfx("10.88.0.0/15"), "10.90.0.0/24", nil},
		{"host address inside", pfx("10.89.0.0/16"), 24, pfx("10.89.0.7/32"), "10.89.1.0/24", nil},
		{"unaligned pool", pfx("10.89.3.7/16"), 24, nil, "10.89.0.0/24", nil},
		{"smaller subnets", pfx("10.89.0.0/24"), 26, pfx("10.89.0.0/26"), "10.89.0.64/26", nil},
		{"pool smaller than size", pfx("10.89.0.0/25"), 24, nil, "", errdefs.ErrUnavailable},
		{"exhausted", pfx("10.89.0.0/23"), 24, pfx("10.89.0.0/24", "10.89.1.0/24"), "", errdefs.ErrUnavailable},
		{"ipv6 pool ignored", pfx("fd00::/64"), 24, nil, "", errdefs.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickSubnet(c.pool, c.size, c.taken)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, %v; want %v", got, err, c.err)
				}
				return
			}
			if err != nil || got.String() != c.want {
				t.Fatalf("got %v, %v; want %s", got, err, c.want)
			}
		})
	}
}

// Hundreds of create/remove cycles never exhaust a /16: freed subnets come
// back, and live ones never overlap.
func TestPickSubnetChurn(t *testing.T) {
	t.Parallel()
	pool := pfx("10.231.0.0/16")
	var live []netip.Prefix
	for i := range 300 {
		if len(live) == 200 {
			live = live[100:] // free the oldest hundred
		}
		p, err := pickSubnet(pool, 24, live)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		for _, q := range live {
			if q.Overlaps(p) {
				t.Fatalf("allocation %d: %s overlaps live %s", i, p, q)
			}
		}
		live = append(live, p)
	}
	// A full /16 gives exactly 256 /24s.
	var all []netip.Prefix
	for range 256 {
		p, err := pickSubnet(pool, 24, all)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	if _, err := pickSubnet(pool, 24, all); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("257th /24: %v", err)
	}
}

func TestNextAddr(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	cases := []struct {
		name   string
		subnet string
		used   []string
		want   string
		err    error
	}{
		{"first after gateway", "10.1.2.0/24", nil, "10.1.2.2", nil},
		{"skips used", "10.1.2.0/24", []string{"10.1.2.2", "10.1.2.3"}, "10.1.2.4", nil},
		{"reuses a hole", "10.1.2.0/24", []string{"10.1.2.2", "10.1.2.4"}, "10.1.2.3", nil},
		{"last before broadcast", "10.1.2.0/30", nil, "10.1.2.2", nil},
		{"full /30", "10.1.2.0/30", []string{"10.1.2.2"}, "", errdefs.ErrUnavailable},
		{"never the broadcast", "10.1.2.0/29", []string{"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}, "", errdefs.ErrUnavailable},
		{"/31 has no hosts", "10.1.2.0/31", nil, "", errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			used := map[netip.Addr]bool{}
			for _, u := range c.used {
				used[a(u)] = true
			}
			got, err := nextAddr(netip.MustParsePrefix(c.subnet), used)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, %v; want %v", got, err, c.err)
				}
				return
			}
			if err != nil || got != a(c.want) {
				t.Fatalf("got %v, %v; want %s", got, err, c.want)
			}
		})
	}
}

// Whatever the pool and taken set, a chosen subnet is inside the pool,
// aligned, and overlaps nothing taken.
func FuzzPickSubnet(f *testing.F) {
	f.Add(uint32(0x0a590000), uint8(16), uint8(24), uint32(0x0a590000), uint8(23))
	f.Add(uint32(0x0a000000), uint8(8), uint8(30), uint32(0x0a000004), uint8(32))
	f.Fuzz(func(t *testing.T, poolAddr uint32, poolBits, size uint8, takenAddr uint32, takenBits uint8) {
		if poolBits > 32 || takenBits > 32 || size > 32 || int(size)-int(poolBits) > 12 {
			return
		}
		pool := []netip.Prefix{netip.PrefixFrom(uintToV4(poolAddr), int(poolBits))}
		taken := []netip.Prefix{netip.PrefixFrom(uintToV4(takenAddr), int(takenBits)).Masked()}
		got, err := pickSubnet(pool, int(size), taken)
		if err != nil {
			return
		}
		if got.Masked() != got || got.Bits() != int(size) || !pool[0].Masked().Contains(got.Addr()) || got.Overlaps(taken[0]) {
			t.Fatalf("pickSubnet(%v, %d, %v) = %v", pool, size, taken, got)
		}
	})
}
