package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/network"
)

// TestPublishedPortsMustReachHostClientsWithoutNAT: a client on the host
// reaching a published port, TCP and UDP, IPv4 and IPv6, is handed the
// container's address by the socket hooks (conntrack's original
// destination is the container: the DNAT never saw it), yet sees the
// published address as its peer and as the source of UDP answers; a
// container reaching the port through the host's address goes through the
// DNAT; a port freed by stop is no longer redirected (a host listener
// gets it); after down nothing of the hooks is left.
func TestPublishedPortsMustReachHostClientsWithoutNAT(t *testing.T) {
	before, err := network.SockLBObjects()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	tcp, udp := freePort(t), freePort(t)
	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`
name: socklb
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello > /www; httpd -p 80 -h /; exec /netprobe udp-serve 9000"]
    volumes: ["%s:/netprobe:ro"]
    ports: ["%d:80", "%d:9000/udp"]
    networks: [v6]
  probe:
    image: busybox
    command: ["sleep", "3600"]
    networks: [v6]
networks:
  v6: {enable_ipv6: true}
`, netprobeBin, tcp, udp)})
	e.downAtEnd("socklb")
	e.must("up", "-d")
	if after, _ := network.SockLBObjects(); len(after) == len(before) {
		t.Skipf("no socket hooks on this host (no cgroup v2 or kernel without them): host clients keep the DNAT")
	}
	addrs := e.sh("web", "ip -o addr show eth0")
	c4 := regexp.MustCompile(`inet ([0-9.]+)/`).FindStringSubmatch(addrs)
	c6 := regexp.MustCompile(`inet6 (fd[0-9a-f:]+)/`).FindStringSubmatch(addrs)
	if c4 == nil || c6 == nil {
		t.Fatalf("container addresses: %q", addrs)
	}
	container := map[bool]netip.Addr{false: netip.MustParseAddr(c4[1]), true: netip.MustParseAddr(c6[1])}

	hosts := []string{"127.0.0.1", "::1"}
	if e.netns != "" {
		hosts = append(hosts, uplinkIP, uplinkIP6)
	} else {
		if a, ok := hostIPv4(); ok {
			hosts = append(hosts, a)
		}
		if a, ok := hostIPv6(); ok {
			hosts = append(hosts, a)
		}
	}
	for _, h := range hosts {
		host := netip.MustParseAddr(h)
		v6 := host.Is6()
		if err := e.inHost(func() error {
			// TCP: an HTTP answer, the published address as peer, and the
			// container's address as conntrack's original destination.
			pub := netip.AddrPortFrom(host, uint16(tcp))
			c, err := net.DialTimeout("tcp", pub.String(), 5*time.Second)
			if err != nil {
				return fmt.Errorf("tcp: %w", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /www HTTP/1.0\r\n\r\n")
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			if !regexp.MustCompile(`^HTTP/1.[01] 200`).Match(buf[:n]) {
				return fmt.Errorf("tcp: answer %q", buf[:n])
			}
			if peer, err := peerOf(c); err != nil || peer != pub {
				return fmt.Errorf("tcp: getpeername %s %v, want %s", peer, err, pub)
			}
			if dst, err := ctOriginalDst(v6, unix.IPPROTO_TCP, c.LocalAddr().(*net.TCPAddr).Port); err != nil || dst != container[v6] {
				return fmt.Errorf("tcp: conntrack's original destination %s %v, want the container's %s", dst, err, container[v6])
			}
			// UDP, unconnected: the echo comes from the published address.
			pub = netip.AddrPortFrom(host, uint16(udp))
			pc, err := net.ListenPacket(map[bool]string{false: "udp4", true: "udp6"}[v6], ":0")
			if err != nil {
				return err
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := pc.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(pub)); err != nil {
				return fmt.Errorf("udp: %w", err)
			}
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				return fmt.Errorf("udp: echo %q %v", buf[:n], err)
			}
			if f := from.(*net.UDPAddr).AddrPort(); netip.AddrPortFrom(f.Addr().Unmap(), f.Port()) != pub {
				return fmt.Errorf("udp: answer from %s, want %s", f, pub)
			}
			if dst, err := ctOriginalDst(v6, unix.IPPROTO_UDP, pc.LocalAddr().(*net.UDPAddr).Port); err != nil || dst != container[v6] {
				return fmt.Errorf("udp: conntrack's original destination %s %v, want the container's %s", dst, err, container[v6])
			}
			return nil
		}); err != nil {
			t.Errorf("host client to %s: %v", h, err)
		}
	}
	// A container reaching the port through the host's address: the DNAT
	// (hairpin).
	if len(hosts) > 2 {
		if out, ok := e.try("probe", fmt.Sprintf("timeout 5 wget -q -O - http://%s:%d/www", hosts[2], tcp)); !ok || out != "hello\n" {
			t.Errorf("probe through the host's address %s: %q", hosts[2], out)
		}
	}

	// The hooks follow the host's addresses (the DNS server watches them):
	// an address added is redirected, and once it is gone it is not (an
	// unreachable route stands in for wherever it went, so nothing leaves
	// the host).
	extra := netip.MustParseAddr("192.0.2.77")
	if err := e.inHost(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: netlink.NewIPNet(extra.AsSlice())}
		if err := netlink.AddrAdd(lo, addr); err != nil {
			return err
		}
		defer netlink.AddrDel(lo, addr)
		route := &netlink.Route{Dst: netlink.NewIPNet(extra.AsSlice()), Type: unix.RTN_UNREACHABLE}
		if err := netlink.RouteAdd(route); err != nil {
			return err
		}
		defer netlink.RouteDel(route)
		pub := netip.AddrPortFrom(extra, uint16(tcp)).String()
		if err := waitFor(5*time.Second, func() error {
			c, err := net.DialTimeout("tcp4", pub, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			if dst, err := ctOriginalDst(false, unix.IPPROTO_TCP, c.LocalAddr().(*net.TCPAddr).Port); err != nil || dst != container[false] {
				return fmt.Errorf("conntrack's original destination %s %v", dst, err)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("address added: %w", err)
		}
		if err := netlink.AddrDel(lo, addr); err != nil {
			return err
		}
		return waitFor(5*time.Second, func() error {
			c, err := net.DialTimeout("tcp4", pub, time.Second)
			if err == nil {
				c.Close()
				return fmt.Errorf("%s still reaches the container", pub)
			}
			return nil
		})
	}); err != nil {
		t.Errorf("following the host's addresses: %v", err)
	}

	// Stopped: the port is free and no longer redirected, a host listener
	// takes the connection.
	e.must("stop", "-t", "1", "web")
	if err := e.inHost(func() error {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", tcp))
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := net.DialTimeout("tcp4", l.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		a, err := l.Accept()
		if err != nil {
			return fmt.Errorf("the host listener got nothing: %w", err)
		}
		return a.Close()
	}); err != nil {
		t.Errorf("port %d after stop: %v", tcp, err)
	}

	e.must("down", "-t", "1")
	for _, o := range sockHooksLeft(before) {
		t.Errorf("left after down: %s", o)
	}
}

// sockHooksLeft is what SockLBObjects lists beyond before, once the
// kernel has freed what was detached (maps go a moment after their last
// program), or after 5 seconds.
func sockHooksLeft(before []string) []string {
	var left []string
	waitFor(5*time.Second, func() error {
		objs, err := network.SockLBObjects()
		if err != nil {
			left = []string{err.Error()}
			return err
		}
		left = slices.DeleteFunc(objs, func(o string) bool { return slices.Contains(before, o) })
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
	return left
}

// peerOf is getpeername(2) of c, as the kernel and its hooks give it.
func peerOf(c net.Conn) (netip.AddrPort, error) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var sa unix.Sockaddr
	if cerr := rc.Control(func(fd uintptr) { sa, err = unix.Getpeername(int(fd)) }); cerr != nil {
		return netip.AddrPort{}, cerr
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), err
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)), err
	}
	return netip.AddrPort{}, fmt.Errorf("getpeername: %T %v", sa, err)
}

// ctOriginalDst is the original destination conntrack has for the flow
// from local port lport, in the calling thread's namespace.
func ctOriginalDst(v6 bool, proto uint8, lport int) (netip.Addr, error) {
	fam := netlink.InetFamily(unix.AF_INET)
	if v6 {
		fam = unix.AF_INET6
	}
	flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, f := range flows {
		if f.Forward.Protocol == proto && int(f.Forward.SrcPort) == lport {
			a, _ := netip.AddrFromSlice(f.Forward.DstIP)
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no conntrack entry from port %d", lport)
}

// waitFor retries f until it succeeds or timeout passes, and returns its
// last error.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// detachSockHooks takes Berth's socket hooks off the cgroup v2 root, as a
// reboot does (their maps go with them).
func detachSockHooks(t testing.TB) {
	t.Helper()
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		cg, err := os.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		for _, attach := range []ebpf.AttachType{
			ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupInet6Connect,
			ebpf.AttachCGroupUDP4Sendmsg, ebpf.AttachCGroupUDP6Sendmsg,
			ebpf.AttachCGroupUDP4Recvmsg, ebpf.AttachCGroupUDP6Recvmsg,
			ebpf.AttachCgroupInet4GetPeername, ebpf.AttachCgroupInet6GetPeername,
		} {
			q, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: attach})
			if err != nil {
				continue
			}
			for _, ap := range q.Programs {
				p, err := ebpf.NewProgramFromID(ap.ID)
				if err != nil {
					continue
				}
				if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, "berth_") {
					if err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: int(cg.Fd()), Program: p, Attach: attach}); err != nil {
						t.Errorf("detach %s: %v", info.Name, err)
					}
				}
				p.Close()
			}
		}
		return
	}
}
