package network

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

func TestPortTag(t *testing.T) {
	t.Parallel()
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		port Port
		tag  string
	}{
		{Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, "berth port " + id + " tcp * 8080 80"},
		{Port{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 53, ContainerPort: 53, Protocol: "udp"}, "berth port " + id + " udp * 53 53"},
		{Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 65535, ContainerPort: 1, Protocol: "tcp"}, "berth port " + id + " tcp 127.0.0.1 65535 1"},
		{Port{HostIP: netip.MustParseAddr("::1"), HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, "berth port " + id + " tcp ::1 8080 80"},
	}
	for _, c := range cases {
		tag := portTag(id, c.port)
		if tag != c.tag {
			t.Errorf("portTag = %q, want %q", tag, c.tag)
		}
		gotID, p, ok := parsePortTag(tag)
		want := c.port
		if want.HostIP.IsUnspecified() {
			want.HostIP = netip.Addr{}
		}
		if !ok || gotID != id || p != want {
			t.Errorf("parsePortTag(%q) = %q %+v %v", tag, gotID, p, ok)
		}
		if len(tag) > 200 {
			t.Errorf("tag too long for a rule comment: %d", len(tag))
		}
	}
	for _, bad := range []string{
		"", "berth net abc", "berth port id tcp * 0 1", "berth port id tcp * 65536 1", "berth port id tcp * 80",
		"berth port id sctp * 80 80", "berth port id tcp ::ffff:1.2.3.4 80 80", "berth port id tcp 0.0.0.0 80 80",
		"berth port id tcp * 080 80", "berth port id tcp *  80 80", "berth port id tcp * 80 80 extra", "berth port id tcp * 80 0",
	} {
		if _, _, ok := parsePortTag(bad); ok {
			t.Errorf("parsePortTag(%q) accepted", bad)
		}
	}
}

func FuzzParsePortTag(f *testing.F) {
	f.Add("berth port abc tcp * 8080 80")
	f.Add("berth port abc udp 127.0.0.1 53 53")
	f.Add("berth port abc tcp fd00::1 443 8443")
	f.Add("berth net 0123")
	f.Add("berth port a tcp 1.2.3.4 0")
	f.Fuzz(func(t *testing.T, s string) {
		id, p, ok := parsePortTag(s)
		if !ok {
			return
		}
		// Whatever parses must print back to the same tag.
		if got := portTag(id, p); got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

func TestPortsClash(t *testing.T) {
	t.Parallel()
	lo := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("192.0.2.2")
	cases := []struct {
		a, b Port
		want bool
	}{
		{Port{HostPort: 80, Protocol: "tcp"}, Port{HostPort: 80, Protocol: "tcp"}, true},
		{Port{HostPort: 80, Protocol: "tcp"}, Port{HostPort: 80, Protocol: "udp"}, false},
		{Port{HostPort: 80, Protocol: "tcp"}, Port{HostPort: 81, Protocol: "tcp"}, false},
		{Port{HostIP: lo, HostPort: 80, Protocol: "tcp"}, Port{HostPort: 80, Protocol: "tcp"}, true},
		{Port{HostIP: lo, HostPort: 80, Protocol: "tcp"}, Port{HostIP: lo, HostPort: 80, Protocol: "tcp"}, true},
		{Port{HostIP: lo, HostPort: 80, Protocol: "tcp"}, Port{HostIP: other, HostPort: 80, Protocol: "tcp"}, false},
		{Port{HostIP: netip.MustParseAddr("::1"), HostPort: 80, Protocol: "tcp"}, Port{HostPort: 80, Protocol: "tcp"}, true},
		{Port{HostIP: netip.MustParseAddr("::1"), HostPort: 80, Protocol: "tcp"}, Port{HostIP: lo, HostPort: 80, Protocol: "tcp"}, false},
	}
	for _, c := range cases {
		if got := PortsClash(c.a, c.b); got != c.want {
			t.Errorf("PortsClash(%v, %v) = %v", c.a, c.b, got)
		}
		if got := PortsClash(c.b, c.a); got != c.want {
			t.Errorf("PortsClash(%v, %v) = %v (reversed)", c.b, c.a, got)
		}
	}
}

func count[T expr.Any](es []expr.Any) int {
	n := 0
	for _, e := range es {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

func TestNetworkRules(t *testing.T) {
	t.Parallel()
	n := Network{ID: "abcdef0123456789", Bridge: "berth-abc123456", Subnet: netip.MustParsePrefix("10.231.4.0/24")}
	v6 := &IPAM{Subnet: netip.MustParsePrefix("fd00:4::/64"), Gateway: netip.MustParseAddr("fd00:4::1")}
	cases := []struct {
		internal   bool
		ipv6       *IPAM
		masquerade int
	}{
		{false, nil, 3}, // egress, hairpin, localhost
		{true, nil, 2},  // no egress
		{false, v6, 5},  // egress and hairpin per family, localhost
	}
	for _, c := range cases {
		n.Internal, n.IPv6 = c.internal, c.ipv6
		masq := 0
		for _, r := range postRules(n) {
			if r.tag != "berth net abcdef0123456789" || r.chain != chainNetsPost {
				t.Errorf("rule tagged %q in %s", r.tag, r.chain)
			}
			masq += count[*expr.Masq](r.exprs)
		}
		if masq != c.masquerade {
			t.Errorf("internal=%v ipv6=%v: %d masquerades, want %d", c.internal, c.ipv6 != nil, masq, c.masquerade)
		}
	}
	// Into the bridge: its own traffic passes (or not, without icc), the
	// rest is dropped.
	for _, noICC := range []bool{false, true} {
		n.NoICC = noICC
		rs := intoRules(n)
		first := rs[0].exprs[len(rs[0].exprs)-1].(*expr.Verdict)
		last := rs[len(rs)-1].exprs[len(rs[len(rs)-1].exprs)-1].(*expr.Verdict)
		if (first.Kind == expr.VerdictDrop) != noICC || last.Kind != expr.VerdictDrop || len(rs[len(rs)-1].exprs) != 1 {
			t.Errorf("noICC=%v: into rules %#v", noICC, rs)
		}
	}
}

func TestMatchHelpers(t *testing.T) {
	t.Parallel()
	if got := ifname("berth-1", false); len(got) != 16 || !bytes.HasPrefix(got, []byte("berth-1\x00")) {
		t.Errorf("exact ifname = %q", got)
	}
	if got := ifname(bridgePrefix, true); string(got) != "berth-" {
		t.Errorf("prefix ifname = %q", got)
	}
	cases := []struct {
		prefix     string
		mask, addr []byte
	}{
		{"10.231.4.0/24", []byte{255, 255, 255, 0}, []byte{10, 231, 4, 0}},
		{"127.0.0.0/8", []byte{255, 0, 0, 0}, []byte{127, 0, 0, 0}},
		{"10.1.2.3/30", []byte{255, 255, 255, 252}, []byte{10, 1, 2, 0}},
	}
	for _, c := range cases {
		es := matchSaddr(netip.MustParsePrefix(c.prefix))
		bw := es[3].(*expr.Bitwise)
		cmp := es[4].(*expr.Cmp)
		if !bytes.Equal(bw.Mask, c.mask) || !bytes.Equal(cmp.Data, c.addr) {
			t.Errorf("%s: mask %v addr %v", c.prefix, bw.Mask, cmp.Data)
		}
	}
	ip := netip.MustParseAddr("10.231.4.2")
	all := portRule("c", ip, Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"})
	one := portRule("c", ip, Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, ContainerPort: 80, Protocol: "tcp"})
	if count[*expr.Fib](all.exprs) != 1 || count[*expr.Fib](one.exprs) != 0 {
		t.Errorf("all-addresses rule must use fib daddr type local, a specific one must not")
	}
	for _, r := range []ruleSpec{all, one} {
		nat := r.exprs[len(r.exprs)-1].(*expr.NAT)
		if nat.Type != expr.NATTypeDestNAT || r.chain != chainPorts {
			t.Errorf("port rule %#v", r)
		}
		port := r.exprs[len(r.exprs)-2].(*expr.Immediate)
		if !bytes.Equal(port.Data, []byte{0, 80}) {
			t.Errorf("dnat port bytes %v", port.Data)
		}
	}
}
