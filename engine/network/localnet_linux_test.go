package network

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netnstest"
)

// TestContainerCannotReachHostLoopback: route_localnet on the bridge (for
// publishing on 127.0.0.1) must not let a container send packets to the
// host's 127.0.0.1 and reach services bound only there (CVE-2020-8558's
// pattern). The container here reroutes 127.0.0.1 through its gateway,
// which root in the container, or CAP_NET_RAW crafting frames, can do.
func TestContainerCannotReachHostLoopback(t *testing.T) {
	m := newTestManager(t)
	ctx := t.Context()
	if _, err := m.Create(ctx, Spec{Name: "lo"}); err != nil {
		t.Fatal(err)
	}
	sb, ep := connected(t, m, "lo")

	// A UDP service bound to the host's loopback only: one datagram that
	// arrives is already a breach, no handshake needed.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	err = netnstest.Run(sb, func() error {
		// Send 127.0.0.1 out through eth0 instead of the local loopback.
		local, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 255}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range local {
			if r.Dst != nil && r.Dst.IP.IsLoopback() {
				if err := netlink.RouteDel(&r); err != nil {
					return err
				}
			}
		}
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		// Sysctls under /proc/sys/net follow the opening thread's netns.
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/eth0/route_localnet", []byte("1"), 0o644); err != nil {
			return err
		}
		_, n, _ := net.ParseCIDR("127.0.0.1/32")
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: n, Gw: ep.Gateway.AsSlice()})
	})
	if err != nil {
		t.Fatalf("reroute loopback in the sandbox: %v", err)
	}
	err = netnstest.Run(sb, func() error {
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		for range 3 {
			c.Write([]byte("from the container"))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from the sandbox: %v", err)
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	if n, from, err := pc.ReadFrom(buf); err == nil {
		t.Fatalf("the host's 127.0.0.1-only service got %q from %v", buf[:n], from)
	}
}

// TestConnectRestoresABridgeLostInAReboot: the records outlive a reboot,
// the bridge and the table do not; the next connect brings both back with
// the recorded name and address, and traffic flows.
func TestConnectRestoresABridgeLostInAReboot(t *testing.T) {
	m := newTestManager(t)
	ctx := t.Context()
	n, err := m.Create(ctx, Spec{Name: "boot"})
	if err != nil {
		t.Fatal(err)
	}
	// The reboot.
	if err := deleteLink(n.Bridge); err != nil {
		t.Fatal(err)
	}
	c := mustConn(t)
	c.DelTable(m.fw.tbl())
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	sbA, _ := connected(t, m, "boot")
	sbB, epB := connected(t, m, "boot")
	if !bridgeExists(n.Bridge) {
		t.Fatalf("bridge %s not restored", n.Bridge)
	}
	serveIn(t, sbB, net.JoinHostPort(epB.IP.String(), "8080"), "restored")
	if got, err := fetchFrom(sbA, net.JoinHostPort(epB.IP.String(), "8080"), 3*time.Second); err != nil || got != "restored" {
		t.Fatalf("traffic after restore: %q %v", got, err)
	}
	if got, _ := m.Get(ctx, "boot"); got.Subnet != n.Subnet || got.Bridge != n.Bridge {
		t.Fatalf("record changed: %+v", got)
	}
}

// TestConnectCompletesAHalfMadeNetwork: a command killed while creating a
// network leaves the record and a bridge with no address, down, and no
// rules; the next connect completes it.
func TestConnectCompletesAHalfMadeNetwork(t *testing.T) {
	m := newTestManager(t)
	ctx := t.Context()
	n, err := m.Create(ctx, Spec{Name: "half"})
	if err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	for _, a := range addrs {
		netlink.AddrDel(link, &a)
	}
	netlink.LinkSetDown(link)
	if err := m.fw.removeTagged(netTag(n.ID)); err != nil {
		t.Fatal(err)
	}
	if m.whole(t.Context(), n) {
		t.Fatal("a stripped network reads as whole")
	}
	sbA, _ := connected(t, m, "half")
	sbB, epB := connected(t, m, "half")
	if !m.whole(t.Context(), n) {
		t.Fatal("connect did not complete the network")
	}
	serveIn(t, sbB, net.JoinHostPort(epB.IP.String(), "8080"), "whole")
	if got, err := fetchFrom(sbA, net.JoinHostPort(epB.IP.String(), "8080"), 3*time.Second); err != nil || got != "whole" {
		t.Fatalf("traffic after completion: %q %v", got, err)
	}
}
