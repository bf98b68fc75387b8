package network

import (
	"encoding/binary"
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

func pools(size int, ss ...string) []Pool {
	var out []Pool
	for _, p := range pfx(ss...) {
		out = append(out, Pool{Base: p, Size: size})
	}
	return out
}

func TestPickSubnet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		pools []Pool
		taken []netip.Prefix
		want  string
		err   error
	}{
		{"empty host", pools(24, "10.89.0.0/16"), nil, "10.89.0.0/24", nil},
		{"skips used", pools(24, "10.89.0.0/16"), pfx("10.89.0.0/24", "10.89.1.0/24"), "10.89.2.0/24", nil},
		{"skips overlapping host route", pools(24, "10.89.0.0/16"), pfx("10.89.0.0/23", "10.89.2.128/25"), "10.89.3.0/24", nil},
		{"wide route covers pool", pools(24, "10.89.0.0/16", "10.90.0.0/16"), pfx("10.88.0.0/15"), "10.90.0.0/24", nil},
		{"host address inside", pools(24, "10.89.0.0/16"), pfx("10.89.0.7/32"), "10.89.1.0/24", nil},
		{"unaligned pool", pools(24, "10.89.3.7/16"), nil, "10.89.0.0/24", nil},
		{"smaller subnets", pools(26, "10.89.0.0/24"), pfx("10.89.0.0/26"), "10.89.0.64/26", nil},
		{"pool smaller than size", pools(24, "10.89.0.0/25"), nil, "", errdefs.ErrUnavailable},
		{"exhausted", pools(24, "10.89.0.0/23"), pfx("10.89.0.0/24", "10.89.1.0/24"), "", errdefs.ErrUnavailable},
		{"ipv6", pools(64, "fd00:1::/48"), pfx("fd00:1::/64", "fd00:1:0:1::1/128"), "fd00:1:0:2::/64", nil},
		{"ipv6 skips a wide route at once", pools(64, "fd00::/16"), pfx("fd00::/17"), "fd00:8000::/64", nil},
		{"ipv4 taken does not block ipv6", pools(64, "fd00:1::/48"), pfx("0.0.0.0/1"), "fd00:1::/64", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickSubnet(c.pools, c.taken)
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
	pool := pools(24, "10.231.0.0/16")
	var live []netip.Prefix
	for i := range 300 {
		if len(live) == 200 {
			live = live[100:] // free the oldest hundred
		}
		p, err := pickSubnet(pool, live)
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
		p, err := pickSubnet(pool, all)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	if _, err := pickSubnet(pool, all); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("257th /24: %v", err)
	}
}

func TestNextAddr(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	cases := []struct {
		name         string
		ipam         IPAM
		used, others []string
		want, prefer string
		got          string
		err          error
	}{
		{name: "first after gateway", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, got: "10.1.2.2"},
		{name: "skips used", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.2", "10.1.2.3"}, got: "10.1.2.4"},
		{name: "reuses a hole", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.2", "10.1.2.4"}, got: "10.1.2.3"},
		{name: "gateway elsewhere", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.254")}, got: "10.1.2.1"},
		{name: "skips aux", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1"), Aux: map[string]netip.Addr{"r": a("10.1.2.2")}}, got: "10.1.2.3"},
		{name: "range", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1"), Range: pfx("10.1.2.128/25")[0]}, got: "10.1.2.128"},
		{name: "last before broadcast", ipam: IPAM{Subnet: pfx("10.1.2.0/30")[0], Gateway: a("10.1.2.1")}, got: "10.1.2.2"},
		{name: "full /30", ipam: IPAM{Subnet: pfx("10.1.2.0/30")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.2"}, err: errdefs.ErrUnavailable},
		{name: "never the broadcast", ipam: IPAM{Subnet: pfx("10.1.2.0/29")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}, err: errdefs.ErrUnavailable},
		{name: "prefers its last address", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, prefer: "10.1.2.9", got: "10.1.2.9"},
		{name: "last address taken", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.9"}, prefer: "10.1.2.9", got: "10.1.2.2"},
		{name: "avoids others' last", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, others: []string{"10.1.2.2"}, got: "10.1.2.3"},
		{name: "others' last when nothing else", ipam: IPAM{Subnet: pfx("10.1.2.0/30")[0], Gateway: a("10.1.2.1")}, others: []string{"10.1.2.2"}, got: "10.1.2.2"},
		{name: "static", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, want: "10.1.2.50", got: "10.1.2.50"},
		{name: "static outside", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, want: "10.1.3.50", err: errdefs.ErrInvalidArgument},
		{name: "static taken", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, used: []string{"10.1.2.50"}, want: "10.1.2.50", err: errdefs.ErrConflict},
		{name: "static gateway", ipam: IPAM{Subnet: pfx("10.1.2.0/24")[0], Gateway: a("10.1.2.1")}, want: "10.1.2.1", err: errdefs.ErrConflict},
		{name: "ipv6", ipam: IPAM{Subnet: pfx("fd00:1::/64")[0], Gateway: a("fd00:1::1")}, got: "fd00:1::2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := func(l []string) map[netip.Addr]bool {
				m := map[netip.Addr]bool{}
				for _, u := range l {
					m[a(u)] = true
				}
				return m
			}
			var want, prefer netip.Addr
			if c.want != "" {
				want = a(c.want)
			}
			if c.prefer != "" {
				prefer = a(c.prefer)
			}
			got, err := nextAddr(c.ipam, set(c.used), set(c.others), want, prefer)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, %v; want %v", got, err, c.err)
				}
				return
			}
			if err != nil || got != a(c.got) {
				t.Fatalf("got %v, %v; want %s", got, err, c.got)
			}
		})
	}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	cases := []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"empty", Spec{Name: "n"}, true},
		{"full ipv4", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/16"), Range: p("10.5.1.0/24"), Gateway: a("10.5.0.254"), Aux: map[string]netip.Addr{"x": a("10.5.0.3")}}}, true},
		{"host bits", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.1/16")}}, false},
		{"ipv6 as ipv4", Spec{Name: "n", IPv4: IPAM{Subnet: p("fd00::/64")}}, false},
		{"range outside", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/16"), Range: p("10.6.0.0/24")}}, false},
		{"range wider", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/24"), Range: p("10.5.0.0/16")}}, false},
		{"gateway outside", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/24"), Gateway: a("10.6.0.1")}}, false},
		{"gateway is broadcast", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/24"), Gateway: a("10.5.0.255")}}, false},
		{"aux outside", Spec{Name: "n", IPv4: IPAM{Subnet: p("10.5.0.0/24"), Aux: map[string]netip.Addr{"x": a("10.9.0.3")}}}, false},
		{"range without subnet", Spec{Name: "n", IPv4: IPAM{Range: p("10.5.0.0/24")}}, false},
		{"ipv6 without enable", Spec{Name: "n", IPv6: IPAM{Subnet: p("fd00::/64")}}, false},
		{"ipv6", Spec{Name: "n", EnableIPv6: true, IPv6: IPAM{Subnet: p("fd00::/64")}}, true},
		{"ipv4 as ipv6", Spec{Name: "n", EnableIPv6: true, IPv6: IPAM{Subnet: p("10.5.0.0/24")}}, false},
		{"mtu", Spec{Name: "n", MTU: 1280}, true},
		{"mtu too small", Spec{Name: "n", MTU: 20}, false},
		{"bridge name too long", Spec{Name: "n", Bridge: "abcdefghijklmnopq"}, false},
	}
	for _, c := range cases {
		err := CheckSpec(c.spec)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: class of %v", c.name, err)
		}
	}
}

func TestParsePools(t *testing.T) {
	t.Parallel()
	got, err := ParsePools("10.89.0.0/16, 172.30.0.0/15/26,fd00:1::/48,fd00:2::/40/56")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.89.0.0/16/24", "172.30.0.0/15/26", "fd00:1::/48/64", "fd00:2::/40/56"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("pool %d = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"nope", "10.0.0.0/16/8", "10.0.0.0/16/31", "10.0.0.1/16", "fd00::/64/127", "10.0.0.0/16/x"} {
		if _, err := ParsePools(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Whatever the pool and taken set, a chosen subnet is inside the pool,
// aligned, and overlaps nothing taken.
func FuzzPickSubnet(f *testing.F) {
	f.Add(uint32(0x0a590000), uint8(16), uint8(24), uint32(0x0a590000), uint8(23))
	f.Add(uint32(0x0a000000), uint8(8), uint8(30), uint32(0x0a000004), uint8(32))
	f.Fuzz(func(t *testing.T, poolAddr uint32, poolBits, size uint8, takenAddr uint32, takenBits uint8) {
		if poolBits > 32 || takenBits > 32 || size > 32 {
			return
		}
		v4 := func(u uint32) netip.Addr {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], u)
			return netip.AddrFrom4(b)
		}
		pool := []Pool{{Base: netip.PrefixFrom(v4(poolAddr), int(poolBits)), Size: int(size)}}
		taken := []netip.Prefix{netip.PrefixFrom(v4(takenAddr), int(takenBits)).Masked()}
		got, err := pickSubnet(pool, taken)
		if err != nil {
			return
		}
		if got.Masked() != got || got.Bits() != int(size) || !pool[0].Base.Masked().Contains(got.Addr()) || got.Overlaps(taken[0]) {
			t.Fatalf("pickSubnet(%v, %v) = %v", pool, taken, got)
		}
	})
}
