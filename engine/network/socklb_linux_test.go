package network

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/netnstest"
)

func TestLBKeyEncoding(t *testing.T) {
	t.Parallel()
	for _, k := range []lbKey{
		{cookie: 0x0102030405060708, addr: netip.MustParseAddr("10.89.0.2"), port: 8080, proto: unix.IPPROTO_TCP},
		{cookie: 1, addr: netip.MustParseAddr("fd89::2"), port: 53, proto: unix.IPPROTO_UDP},
	} {
		b := k.marshal()
		if len(b) != lbKeySize {
			t.Fatalf("%v: %d bytes", k, len(b))
		}
		// What the programs write: the address as in the socket address
		// (network order), the port in network order, protocol, family.
		n := 4
		if k.addr.Is6() {
			n = 16
		}
		if !bytes.Equal(b[8:8+n], k.addr.AsSlice()) || !bytes.Equal(b[8+n:24], make([]byte, 16-n)) {
			t.Errorf("%v: address bytes % x", k, b[8:24])
		}
		if b[24] != byte(k.port>>8) || b[25] != byte(k.port) || b[26] != k.proto || int(b[27]) != map[bool]int{true: 4, false: 6}[k.addr.Is4()] {
			t.Errorf("%v: port/proto/family bytes % x", k, b[24:28])
		}
		if !bytes.Equal(b[28:], make([]byte, 4)) {
			t.Errorf("%v: padding % x", k, b[28:])
		}
		got, ok := unmarshalLBKey(b)
		if !ok || got != k {
			t.Errorf("round trip of %v: %v %v", k, got, ok)
		}
	}
	if _, ok := unmarshalLBKey(make([]byte, lbKeySize)); ok {
		t.Error("a key of family 0 decoded")
	}
	for _, v := range []lbValue{
		{addr: netip.MustParseAddr("10.89.0.2"), port: 80},
		{addr: netip.MustParseAddr("fd89::2"), port: 443},
	} {
		b := v.marshal()
		if len(b) != lbValueSize || b[16] != byte(v.port>>8) || b[17] != byte(v.port) {
			t.Errorf("%v: % x", v, b)
		}
		if got, ok := unmarshalLBValue(b, v.addr.Is4()); !ok || got != v {
			t.Errorf("round trip of %v: %v %v", v, got, ok)
		}
	}
}

// TestAddressChangesThatCannotMoveTheMapAreIgnored: every veth a start
// creates gets a link-local address, which never keys the map; the
// address watcher must not re-read every Berth table for it.
func TestAddressChangesThatCannotMoveTheMapAreIgnored(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"fe80::a8c1:abff:fe12:3456": false, "169.254.3.4": false, "ff02::1": false,
		"192.0.2.7": true, "2001:db8::7": true, "127.0.0.1": true, "10.89.0.1": true,
	} {
		u := netlink.AddrUpdate{LinkAddress: net.IPNet{IP: net.ParseIP(addr)}}
		if got := addrUpdateMatters(u); got != want {
			t.Errorf("an update of %s matters: %v, want %v", addr, got, want)
		}
	}
}

func TestLBEntries(t *testing.T) {
	t.Parallel()
	lo, host, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("::1")
	c4, c6 := netip.MustParseAddr("10.89.0.2"), netip.MustParseAddr("fd89::2")
	pub := []publishedPort{
		{port: Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, to4: c4, to6: c6},
		{port: Port{HostIP: lo, HostPort: 5353, ContainerPort: 53, Protocol: "udp"}, to4: c4},
		{port: Port{HostPort: 9090, ContainerPort: 90, Protocol: "tcp"}, to4: c4}, // no v6 rule
	}
	got := lbEntries(7, pub, []netip.Addr{lo, host, lo6})
	want := map[lbKey]lbValue{
		{7, lo, 8080, unix.IPPROTO_TCP}:   {c4, 80},
		{7, host, 8080, unix.IPPROTO_TCP}: {c4, 80},
		{7, lo6, 8080, unix.IPPROTO_TCP}:  {c6, 80},
		{7, lo, 5353, unix.IPPROTO_UDP}:   {c4, 53},
		{7, lo, 9090, unix.IPPROTO_TCP}:   {c4, 90},
		{7, host, 9090, unix.IPPROTO_TCP}: {c4, 90},
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%v: %v, want %v", k, got[k], v)
		}
	}
}

// serveEcho answers TCP connections on every address of the sandbox with
// "hello", and echoes UDP datagrams, on port.
func serveEcho(t *testing.T, sandbox string, port string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	if err := netnstest.Run(sandbox, func() (err error) {
		if ln, err = net.Listen("tcp", ":"+port); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", ":"+port)
		return err
	}); err != nil {
		t.Fatalf("listen in sandbox: %v", err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// originalDst is the original destination conntrack has for the flow
// from local port lport.
func originalDst(t *testing.T, v6 bool, lport uint16, proto uint8) netip.Addr {
	t.Helper()
	fam := netlink.InetFamily(unix.AF_INET)
	if v6 {
		fam = unix.AF_INET6
	}
	flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		t.Fatalf("conntrack: %v", err)
	}
	for _, f := range flows {
		if f.Forward.Protocol == proto && f.Forward.SrcPort == lport {
			a, _ := netip.AddrFromSlice(f.Forward.DstIP)
			return a.Unmap()
		}
	}
	t.Fatalf("no conntrack entry from port %d", lport)
	return netip.Addr{}
}

// TestPublishedPortHostClientsTakeTheSocketPath: a client on the host
// reaching a published port gets the container's address at connect or
// sendmsg (conntrack's original destination is the container, not the
// published address: no DNAT), yet sees the published address as its peer
// and as the source of UDP answers; a container still goes through the
// DNAT; after the last unpublish nothing of ours stays attached. Not
// parallel: it checks the host-global programs come and go.
func TestPublishedPortHostClientsTakeTheSocketPath(t *testing.T) {
	m := newTestManager(t)
	ctx := t.Context()
	if cgroup2Root() == "" {
		t.Skip("no cgroup2 mounted: host clients keep the DNAT")
	}
	if _, err := m.Create(ctx, Spec{Name: "lb", EnableIPv6: true}); err != nil {
		t.Fatal(err)
	}
	sb, ep := connected(t, m, "lb")
	serveEcho(t, sb, "80")
	p := freePort(t)
	ports := []Port{{HostPort: p, ContainerPort: 80, Protocol: "tcp"}, {HostPort: p, ContainerPort: 80, Protocol: "udp"}}
	if _, err := m.Publish(ctx, ep.ContainerID, Target{IPv4: ep.IP, IPv6: ep.IP6}, ports); err != nil {
		t.Fatal(err)
	}
	if got, err := SockLBObjects(); err != nil || len(got) != len(lbHooks)+2 {
		t.Fatalf("objects after publish: %v %v", got, err)
	}
	targets := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if a, ok := hostAddr(); ok {
		targets = append(targets, a)
	}
	for _, host := range targets {
		pub := netip.AddrPortFrom(host, p)
		container := ep.IP
		if host.Is6() {
			container = ep.IP6
		}
		// TCP: the container answers, getpeername says the published
		// address, conntrack never saw it.
		c, err := net.DialTimeout("tcp", pub.String(), 3*time.Second)
		if err != nil {
			t.Errorf("tcp %s: %v", pub, err)
			continue
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "hello" {
			t.Errorf("tcp %s: %q %v", pub, got, err)
		}
		if peer := peerName(t, c); peer != pub {
			t.Errorf("tcp %s: getpeername %s", pub, peer)
		}
		if dst := originalDst(t, host.Is6(), uint16(c.LocalAddr().(*net.TCPAddr).Port), unix.IPPROTO_TCP); dst != container {
			t.Errorf("tcp %s: conntrack's original destination %s, want the container's %s (the socket hook's)", pub, dst, container)
		}
		c.Close()
		// UDP, unconnected: the answer comes from the published address.
		udp := "udp4"
		if host.Is6() {
			udp = "udp6"
		}
		pc, err := net.ListenPacket(udp, ":0")
		if err != nil {
			t.Fatal(err)
		}
		pc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := pc.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(pub)); err != nil {
			t.Errorf("udp %s: %v", pub, err)
		}
		buf := make([]byte, 64)
		n, from, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "ping" {
			t.Errorf("udp %s: %q %v", pub, buf[:n], err)
		} else if f := from.(*net.UDPAddr).AddrPort(); netip.AddrPortFrom(f.Addr().Unmap(), f.Port()) != pub {
			t.Errorf("udp %s: answer from %s", pub, f)
		}
		if dst := originalDst(t, host.Is6(), uint16(pc.LocalAddr().(*net.UDPAddr).Port), unix.IPPROTO_UDP); dst != container {
			t.Errorf("udp %s: conntrack's original destination %s, want the container's %s", pub, dst, container)
		}
		pc.Close()
	}

	// A socket bound to loopback before it connects is rewritten too, and
	// still reaches the container (loopback sources are masqueraded into
	// the bridge).
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 3 * time.Second}
	if c, err := d.Dial("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String()); err != nil {
		t.Errorf("bound to 127.0.0.1: %v", err)
	} else {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
			t.Errorf("bound to 127.0.0.1: %q %v", got, err)
		}
		c.Close()
	}

	// A container reaching the port through the host's address goes
	// through the DNAT.
	if a, ok := hostAddr(); ok {
		sbN, _ := connected(t, m, "lb")
		addr := netip.AddrPortFrom(a, p).String()
		if got, err := fetchFrom(sbN, addr, 3*time.Second); err != nil || got != "hello" {
			t.Errorf("container via host address %s: %q %v", addr, got, err)
		}
	}

	if err := m.Unpublish(ctx, ep.ContainerID); err != nil {
		t.Fatal(err)
	}
	// Programs are detached at once; their maps go a moment later, when
	// the kernel frees the programs.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := SockLBObjects()
		if err == nil && len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("left after the last unpublish: %v %v", got, err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := fetch(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String(), time.Second); err == nil {
		t.Errorf("port %d still reaches the container after unpublish", p)
	}
}

// peerName is getpeername(2) of c, as the kernel (and its hooks) give it.
func peerName(t *testing.T, c net.Conn) netip.AddrPort {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr
	rc.Control(func(fd uintptr) { sa, err = unix.Getpeername(int(fd)) })
	if err != nil {
		t.Fatal(err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	t.Fatalf("getpeername: %T", sa)
	return netip.AddrPort{}
}
