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
		{Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, "berth port " + id + " tcp * 8080"},
		{Port{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 53, ContainerPort: 53, Protocol: "udp"}, "berth port " + id + " udp * 53"},
		{Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 65535, ContainerPort: 1, Protocol: "tcp"}, "berth port " + id + " tcp 127.0.0.1 65535"},
	}
	for _, c := range cases {
		tag := portTag(id, c.port)
		if tag != c.tag {
			t.Errorf("portTag = %q, want %q", tag, c.tag)
		}
		gotID, p, ok := parsePortTag(tag)
		want := c.port
		want.ContainerPort = 0
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
		"", "berth net abc", "berth port id tcp * 0", "berth port id tcp * 65536",
		"berth port id sctp * 80", "berth port id tcp ::1 80", "berth port id tcp 0.0.0.0 80",
		"berth port id tcp * 080", "berth port id tcp *  80", "berth port id tcp * 80 extra",
	} {
		if _, _, ok := parsePortTag(bad); ok {
			t.Errorf("parsePortTag(%q) accepted", bad)
		}
	}
}

func FuzzParsePortTag(f *testing.F) {
	f.Add("berth port abc tcp * 8080")
	f.Add("berth port abc udp 127.0.0.1 53")
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
	}
	for _, c := range cases {
		if got := portsClash(c.a, c.b); got != c.want {
			t.Errorf("portsClash(%v, %v) = %v", c.a, c.b, got)
		}
		if got := portsClash(c.b, c.a); got != c.want {
			t.Errorf("portsClash(%v, %v) = %v (reversed)", c.b, c.a, got)
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
	n := Network{ID: "abc", Bridge: "berth-abc123456", Subnet: netip.MustParsePrefix("10.231.4.0/24")}
	cases := []struct {
		internal            bool
		forward, masquerade int
	}{
		{false, 2, 3}, // isolation + accept; egress, localhost, hairpin
		{true, 4, 2},  // + two internal drops; no egress
	}
	for _, c := range cases {
		n.Internal = c.internal
		var fwd, masq int
		for _, r := range networkRules(n) {
			if r.tag != "berth net abc" {
				t.Errorf("rule tagged %q", r.tag)
			}
			switch r.chain {
			case chainNetsForward:
				fwd++
			case chainNetsPost:
				masq += count[*expr.Masq](r.exprs)
			default:
				t.Errorf("rule in chain %s", r.chain)
			}
		}
		if fwd != c.forward || masq != c.masquerade {
			t.Errorf("internal=%v: %d forward rules, %d masquerades", c.internal, fwd, masq)
		}
	}
	// The first forward rule is the isolation drop, before any accept.
	first := networkRules(Network{ID: "x", Bridge: "berth-x", Subnet: n.Subnet})[0]
	if v, ok := first.exprs[len(first.exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictDrop {
		t.Errorf("first forward rule is not the isolation drop: %#v", first.exprs)
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
		bw := es[1].(*expr.Bitwise)
		cmp := es[2].(*expr.Cmp)
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
