package network

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netnstest"
)

// connected makes a sandbox and connects it to network.
func connected(t *testing.T, m *Manager, network string) (string, Endpoint) {
	t.Helper()
	id := uniqueID(t)
	sb, err := m.CreateSandbox(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := m.Connect(t.Context(), network, id, sb, Attachment{})
	if err != nil {
		t.Fatal(err)
	}
	return sb, ep
}

func TestTrafficSameNetwork(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	if _, err := m.Create(t.Context(), Spec{Name: "net"}); err != nil {
		t.Fatal(err)
	}
	sbA, epA := connected(t, m, "net")
	sbB, epB := connected(t, m, "net")
	serveIn(t, sbB, ":80", "hello from b")
	serveIn(t, sbA, ":80", "hello from a")
	b := net.JoinHostPort(epB.IP.String(), "80")
	cases := []struct{ name, from, to, want string }{
		{"a to b", sbA, b, "hello from b"},
		{"b to a", sbB, net.JoinHostPort(epA.IP.String(), "80"), "hello from a"},
		{"host to b", "", b, "hello from b"},
		{"a to b via gateway route is direct", sbA, b, "hello from b"},
	}
	for _, c := range cases {
		var got string
		var err error
		if c.from == "" {
			got, err = fetch(c.to, 3*time.Second)
		} else {
			got, err = fetchFrom(c.from, c.to, 3*time.Second)
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v", c.name, got, err)
		}
	}
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	for _, n := range []string{"one", "two"} {
		if _, err := m.Create(t.Context(), Spec{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	sbA, _ := connected(t, m, "one")
	sbB, epB := connected(t, m, "two")
	serveIn(t, sbB, ":80", "b")
	b := net.JoinHostPort(epB.IP.String(), "80")
	// The host reaches b, so a failure from a is the isolation rule.
	if got, err := fetch(b, 3*time.Second); err != nil || got != "b" {
		t.Fatalf("host to b: %q %v", got, err)
	}
	if got, err := fetchFrom(sbA, b, time.Second); err == nil {
		t.Errorf("container on another network reached b: %q", got)
	} else if !isTimeoutOrRefused(err) {
		t.Errorf("unexpected error: %v", err)
	}
	// A container on both networks reaches b directly.
	id := uniqueID(t)
	sbC, err := m.CreateSandbox(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"one", "two"} {
		if _, err := m.Connect(t.Context(), n, id, sbC, Attachment{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := fetchFrom(sbC, b, 3*time.Second); err != nil || got != "b" {
		t.Errorf("container on both networks: %q %v", got, err)
	}
}

func TestInternalNetwork(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	if _, err := m.Create(t.Context(), Spec{Name: "in", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(t.Context(), Spec{Name: "out"}); err != nil {
		t.Fatal(err)
	}
	sbA, epA := connected(t, m, "in")
	sbB, epB := connected(t, m, "in")
	serveIn(t, sbB, ":80", "b")
	if got, err := fetchFrom(sbA, net.JoinHostPort(epB.IP.String(), "80"), 3*time.Second); err != nil || got != "b" {
		t.Errorf("same internal network: %q %v", got, err)
	}
	if epA.Gateway.IsValid() && epA.IfName != "eth0" {
		t.Errorf("endpoint %+v", epA)
	}
	// A neighbour on a normal network is not reachable from an internal
	// one, whatever routes the container adds.
	sbC, epC := connected(t, m, "out")
	serveIn(t, sbC, ":80", "c")
	if got, err := fetchFrom(sbA, net.JoinHostPort(epC.IP.String(), "80"), time.Second); err == nil {
		t.Errorf("internal container reached another network: %q", got)
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()
	if _, err := m.Create(ctx, Spec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	sb, ep := connected(t, m, "web")
	serveIn(t, sb, ":80", "published")
	pLocal, pAll := freePort(t), freePort(t)
	_, err := m.Publish(ctx, ep.ContainerID, Target{IPv4: ep.IP}, []Port{
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: pLocal, ContainerPort: 80, Protocol: "tcp"},
		{HostPort: pAll, ContainerPort: 80, Protocol: "tcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{
		net.JoinHostPort("127.0.0.1", strconv.Itoa(int(pLocal))),
		net.JoinHostPort("127.0.0.1", strconv.Itoa(int(pAll))),
	}
	if a, ok := hostAddr(); ok {
		targets = append(targets, net.JoinHostPort(a.String(), strconv.Itoa(int(pAll))))
	} else {
		t.Log("host has no non-loopback address; skipping that target")
	}
	for _, addr := range targets {
		if got, err := fetch(addr, 3*time.Second); err != nil || got != "published" {
			t.Errorf("dial %s: %q %v", addr, got, err)
		}
	}
	// Another container on the same network reaches it through the host
	// address too (hairpin masquerade).
	if a, ok := hostAddr(); ok {
		sbN, _ := connected(t, m, "web")
		addr := net.JoinHostPort(a.String(), strconv.Itoa(int(pAll)))
		if got, err := fetchFrom(sbN, addr, 3*time.Second); err != nil || got != "published" {
			t.Errorf("neighbour via host address %s: %q %v", addr, got, err)
		}
	}

	// The same host port again, from any container, is a conflict.
	_, other := connected(t, m, "web")
	_, err = m.Publish(ctx, other.ContainerID, Target{IPv4: other.IP}, []Port{{HostPort: pAll, ContainerPort: 80, Protocol: "tcp"}})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second publish of %d: %v", pAll, err)
	}
	_, err = m.Publish(ctx, other.ContainerID, Target{IPv4: other.IP}, []Port{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: pAll, ContainerPort: 80, Protocol: "tcp"}})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("publish of 127.0.0.1:%d over *:%d: %v", pAll, pAll, err)
	}
	// Same number, other protocol, is fine.
	if _, err := m.Publish(ctx, other.ContainerID, Target{IPv4: other.IP}, []Port{{HostPort: pAll, ContainerPort: 53, Protocol: "udp"}}); err != nil {
		t.Errorf("udp on a tcp-published number: %v", err)
	}

	if err := m.Unpublish(ctx, ep.ContainerID); err != nil {
		t.Fatal(err)
	}
	if err := m.Unpublish(ctx, ep.ContainerID); err != nil {
		t.Errorf("second unpublish: %v", err)
	}
	if _, err := fetch(targets[0], time.Second); err == nil {
		t.Errorf("port %d still forwarded after unpublish", pLocal)
	}
	if n := countPortRules(t, m); n != 1 {
		t.Errorf("%d port rules left, want 1 (the udp one)", n)
	}
}

func TestPublishConflictWithHostListener(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()
	if _, err := m.Create(ctx, Spec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	_, ep := connected(t, m, "web")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := uint16(ln.Addr().(*net.TCPAddr).Port)
	udp, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	busyUDP := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	free := freePort(t)
	cases := []struct {
		name  string
		ports []Port
		want  error
	}{
		{"all addresses over 127.0.0.1 listener", []Port{{HostPort: busy, ContainerPort: 80, Protocol: "tcp"}}, errdefs.ErrConflict},
		{"127.0.0.1 listener", []Port{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: busy, ContainerPort: 80, Protocol: "tcp"}}, errdefs.ErrConflict},
		{"free port then busy one", []Port{{HostPort: free, ContainerPort: 80, Protocol: "tcp"}, {HostPort: busy, ContainerPort: 81, Protocol: "tcp"}}, errdefs.ErrConflict},
		{"udp", []Port{{HostPort: busyUDP, ContainerPort: 53, Protocol: "udp"}}, errdefs.ErrConflict},
		{"duplicate in one call", []Port{{HostPort: free, ContainerPort: 80, Protocol: "tcp"}, {HostPort: free, ContainerPort: 81, Protocol: "tcp"}}, errdefs.ErrConflict},
		{"bad protocol", []Port{{HostPort: free, ContainerPort: 80, Protocol: "sctp"}}, errdefs.ErrInvalidArgument},
		{"reversed host range", []Port{{HostPort: free, HostPortEnd: free - 1, ContainerPort: 80, Protocol: "tcp"}}, errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		_, err := m.Publish(ctx, ep.ContainerID, Target{IPv4: ep.IP}, c.ports)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if n := countPortRules(t, m); n != 0 {
		t.Errorf("%d port rules added by failed publishes", n)
	}
	// The host listener still gets its own connections.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("host"))
			c.Close()
		}
	}()
	if got, err := fetch(ln.Addr().String(), 3*time.Second); err != nil || got != "host" {
		t.Errorf("host listener: %q %v", got, err)
	}
}

func countPortRules(t *testing.T, m *Manager) int {
	t.Helper()
	c := mustConn(t)
	rules, err := c.GetRules(m.fw.tbl(), &nftables.Chain{Name: chainPorts, Table: m.fw.tbl()})
	if err != nil {
		return 0
	}
	return len(rules)
}

// TestIPv6OnlyOnIPv6Networks: an interface on a network without IPv6 has
// none, not even a link-local address (as Docker); one on an IPv6 network
// of the same sandbox has its address. The sandbox starts with IPv6 off for
// new interfaces, so the IPv6 network's connect must turn it on.
func TestIPv6OnlyOnIPv6Networks(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()
	if _, err := m.Create(ctx, Spec{Name: "four"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, Spec{Name: "six", EnableIPv6: true, IPv6: IPAM{Subnet: netip.MustParsePrefix("fd00:b1:" + uniqueID(t)[:4] + "::/64")}}); err != nil {
		t.Fatal(err)
	}
	sb, ep4 := connected(t, m, "four")
	id := ep4.ContainerID
	ep6, err := m.Connect(ctx, "six", id, sb, Attachment{})
	if err != nil {
		t.Fatal(err)
	}
	if !ep6.IP6.IsValid() {
		t.Fatalf("no IPv6 address on the IPv6 network: %+v", ep6)
	}
	type state struct {
		disabled string
		v6       []netip.Addr
	}
	got := map[string]state{}
	if err := netnstest.Run(sb, func() error {
		for _, ifName := range []string{ep4.IfName, ep6.IfName} {
			// /proc/sys/net is the namespace of the thread that opens it.
			b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifName + "/disable_ipv6")
			if err != nil {
				return err
			}
			l, err := netlink.LinkByName(ifName)
			if err != nil {
				return err
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			st := state{disabled: strings.TrimSpace(string(b))}
			for _, a := range addrs {
				ip, _ := netip.AddrFromSlice(a.IP)
				st.v6 = append(st.v6, ip)
			}
			got[ifName] = st
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := got[ep4.IfName]; s.disabled != "1" || len(s.v6) != 0 {
		t.Errorf("%s on the IPv4 network: disable_ipv6 %s, IPv6 addresses %v; want 1 and none", ep4.IfName, s.disabled, s.v6)
	}
	if s := got[ep6.IfName]; s.disabled != "0" || !slices.Contains(s.v6, ep6.IP6) {
		t.Errorf("%s on the IPv6 network: disable_ipv6 %s, IPv6 addresses %v; want 0 and %s", ep6.IfName, s.disabled, s.v6, ep6.IP6)
	}
}
