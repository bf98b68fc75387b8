package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/netnstest"
)

// dirtyMode: with BERTH_E2E_DIRTY set, every env runs in a dirty host of its
// own (see dirtyHost); make test runs the networking tests again that way.
var dirtyMode = os.Getenv("BERTH_E2E_DIRTY") != ""

// The "outside" of a dirty host: a namespace on the other end of its
// uplink, where the host's default routes point.
const (
	outsideIP   = "198.51.100.1"
	uplinkIP    = "198.51.100.2"
	outsideIP6  = "fd00:5151::1"
	uplinkIP6   = "fd00:5151::2"
	outsideHTTP = "8080"
)

// dirtyHost builds, in a network namespace of the test's own, a host as
// users have them next to Docker, firewalld or a local DNS server, so that
// nothing of it touches the real host or other engineers' runs:
//
//   - iptables-nft's filter FORWARD chain with policy DROP and Docker's
//     DOCKER-USER chain jumped to first; the same for ip6tables-nft;
//   - iptables-legacy's filter FORWARD chain with policy DROP;
//   - a hand-written nftables `table inet filter` whose forward chain drops;
//   - a process listening on 0.0.0.0:53 (UDP and TCP) and [::]:53;
//   - an uplink to an "outside" namespace (the default routes) that serves
//     HTTP on outsideIP:8080 and [outsideIP6]:8080.
//
// It returns the namespace's path and the outside's.
func dirtyHost(t testing.TB) (string, string) {
	t.Helper()
	for _, bin := range []string{"iptables-nft", "ip6tables-nft", "iptables-legacy", "nft", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("dirty host needs %s (apt-get install iptables nftables util-linux)", bin)
		}
	}
	dir := t.TempDir()
	host := netnstest.New(t, filepath.Join(dir, "host"))
	outside := netnstest.New(t, filepath.Join(dir, "outside"))

	// The uplink: veth pair, host end in host, peer in outside.
	err := netnstest.Run(host, func() error {
		o, err := netns.GetFromPath(outside)
		if err != nil {
			return err
		}
		defer o.Close()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "world", PeerNamespace: netlink.NsFd(int(o))}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		return configureLink("uplink", uplinkIP+"/24", uplinkIP6+"/64", outsideIP, outsideIP6)
	})
	if err != nil {
		t.Fatalf("dirty host uplink: %v", err)
	}
	if err := netnstest.Run(outside, func() error { return configureLink("world", outsideIP+"/24", outsideIP6+"/64", "", "") }); err != nil {
		t.Fatalf("dirty host outside: %v", err)
	}
	serveOutside(t, outside)

	for _, cmd := range [][]string{
		{"iptables-nft", "-P", "FORWARD", "DROP"},
		{"iptables-nft", "-N", "DOCKER-USER"},
		{"iptables-nft", "-A", "DOCKER-USER", "-j", "RETURN"},
		{"iptables-nft", "-I", "FORWARD", "1", "-j", "DOCKER-USER"},
		{"ip6tables-nft", "-P", "FORWARD", "DROP"},
		{"iptables-legacy", "-P", "FORWARD", "DROP"},
		{"nft", "add table inet filter"},
		{"nft", "add chain inet filter forward { type filter hook forward priority 0 ; policy drop ; }"},
	} {
		inNamespace(t, host, cmd...)
	}
	// A local DNS server on the host's port 53, all addresses, both
	// protocols, as dnsmasq or a development DNS would hold it. (With
	// SO_REUSEADDR, as dnsmasq's, so a test's fake upstream can still take
	// one loopback address.)
	if err := netnstest.Run(host, func() error {
		for _, l := range []struct{ net, addr string }{{"udp4", "0.0.0.0:53"}, {"udp6", "[::]:53"}} {
			pc, err := reuseAddr.ListenPacket(context.Background(), l.net, l.addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { pc.Close() })
		}
		for _, l := range []struct{ net, addr string }{{"tcp4", "0.0.0.0:53"}, {"tcp6", "[::]:53"}} {
			ln, err := net.Listen(l.net, l.addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
		}
		return nil
	}); err != nil {
		t.Fatalf("dirty host port 53: %v", err)
	}
	return host, outside
}

// reuseAddr listens with SO_REUSEADDR.
var reuseAddr = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
	return errors.Join(err, serr)
}}

// inNamespace runs a command in the namespace and fails the test if it does.
func inNamespace(t testing.TB, ns string, args ...string) string {
	t.Helper()
	if len(args) == 2 && args[0] == "nft" {
		args = append([]string{"nft"}, strings.Fields(args[1])...)
	}
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func configureLink(name, v4, v6, gw4, gw6 string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range []string{v4, v6} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		addr.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	for _, gw := range []string{gw4, gw6} {
		if gw == "" {
			continue
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
			return err
		}
	}
	return nil
}

// serveOutside answers HTTP requests on the outside's port 8080, both
// families, with "outside".
func serveOutside(t testing.TB, outside string) {
	t.Helper()
	if err := netnstest.Run(outside, func() error {
		for _, addr := range []string{net.JoinHostPort(outsideIP, outsideHTTP), net.JoinHostPort(outsideIP6, outsideHTTP)} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						buf := make([]byte, 1024)
						c.Read(buf)
						io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\noutside")
					}()
				}
			}()
		}
		return nil
	}); err != nil {
		t.Fatalf("outside server: %v", err)
	}
}

// foreignRules lists the rules of the host's own firewall in ns that carry
// a Berth comment: iptables (nft and legacy) and other nftables tables.
func foreignRules(t testing.TB, ns string) []string {
	t.Helper()
	var out []string
	for _, bin := range []string{"iptables-nft", "ip6tables-nft", "iptables-legacy"} {
		for _, l := range strings.Split(inNamespace(t, ns, bin, "-S", "FORWARD"), "\n") {
			if strings.Contains(l, `"berth `) || strings.Contains(l, "berth berth") {
				out = append(out, bin+": "+l)
			}
		}
	}
	err := netnstest.Run(ns, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		chains, err := c.ListChains()
		if err != nil {
			return err
		}
		for _, ch := range chains {
			if strings.HasPrefix(ch.Table.Name, "berth") {
				continue
			}
			rules, _ := c.GetRules(ch.Table, ch)
			for _, r := range rules {
				if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); strings.HasPrefix(s, "berth ") {
					out = append(out, fmt.Sprintf("nft %s %s: %s", ch.Table.Name, ch.Name, s))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nsLeaks lists Berth's kernel objects left in a dirty host: links, tables
// and the rules it added to the host's firewall.
func nsLeaks(t testing.TB, ns string) []string {
	t.Helper()
	leaks := foreignRules(t, ns)
	err := netnstest.Run(ns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if n := l.Attrs().Name; strings.HasPrefix(n, "berth-") || strings.HasPrefix(n, "vberth") {
				leaks = append(leaks, "link "+n)
			}
		}
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTables()
		if err != nil {
			return err
		}
		for _, tb := range tables {
			if strings.HasPrefix(tb.Name, "berth") {
				leaks = append(leaks, "nftables table "+tb.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return leaks
}

// hostState dumps what decides a dirty host's forwarding, for a failure's
// log: every ruleset its tools see, its addresses, routes and sysctls.
func hostState(t testing.TB, ns string) string {
	var b strings.Builder
	for _, args := range [][]string{
		{"nft", "list", "ruleset"},
		{"iptables-legacy", "-w", "5", "-S"}, {"iptables-legacy", "-w", "5", "-t", "nat", "-S"},
		{"iptables-nft", "-S"}, {"ip6tables-nft", "-S"},
		{"ip", "addr"}, {"ip", "route"}, {"ip", "-6", "route"},
		{"sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.bridge.bridge-nf-call-iptables"},
		{"cat", "/proc/net/ip_tables_names"},
	} {
		out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, args...)...).CombinedOutput()
		fmt.Fprintf(&b, "# %s (%v)\n%s\n", strings.Join(args, " "), err, out)
	}
	return b.String()
}

// dialIn connects to addr from inside ns ("" for the test's own).
func dialIn(ns, network, addr string) (net.Conn, error) {
	if ns == "" {
		return net.DialTimeout(network, addr, 2*time.Second)
	}
	var c net.Conn
	err := netnstest.Run(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 2*time.Second)
		return err
	})
	return c, err
}

// httpGetIn fetches http://addr/path from inside ns and returns the
// response.
func httpGetIn(ns, addr, path string) (string, error) {
	c, err := dialIn(ns, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	var b bytes.Buffer
	_, err = io.Copy(&b, c)
	if errors.Is(err, os.ErrDeadlineExceeded) && b.Len() > 0 {
		err = nil
	}
	return b.String(), err
}

// TestNetworkingMustWorkOnADirtyHost: on a host whose forward chains drop
// (iptables-nft with DOCKER-USER, iptables-legacy, a native nftables
// table) and whose port 53 is taken, containers reach each other by name,
// the outside (both families), and published ports are reached from the
// outside and from the host, on a network whose bridge Berth names and on
// one named by driver_opts; the accepts Berth adds to the host's firewall
// carry its comment, come back after a reboot wiped them, and go with down.
func TestNetworkingMustWorkOnADirtyHost(t *testing.T) {
	e := newEnv(t)
	if e.netns == "" {
		e.netns, e.outside = dirtyHost(t)
	}
	port, port2 := itoa(freePort(t)), itoa(freePort(t))
	const custom = "dirtybr0" // a bridge name outside berth-*
	e.writeProject(map[string]string{"compose.yaml": `
name: dirty
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello from web > /www; httpd -f -p 80 -h /"]
    ports: ["` + port + `:80"]
    networks: [front]
  web2:
    image: busybox
    command: ["sh", "-c", "echo hello from web2 > /www; httpd -f -p 80 -h /"]
    ports: ["` + port2 + `:80"]
    networks: [custom]
  client:
    image: busybox
    command: ["sleep", "3600"]
    networks: [front, custom]
networks:
  front:
    enable_ipv6: true
  custom:
    enable_ipv6: true
    driver_opts:
      com.docker.network.bridge.name: ` + custom + `
`})
	e.downAtEnd("dirty")
	e.must("up", "-d")

	if len(foreignRules(t, e.netns)) == 0 {
		t.Fatal("no accepts in the host's firewall while networks exist")
	}
	check := func(when string) {
		t.Helper()
		defer func() {
			if t.Failed() {
				t.Logf("%s: the dirty host's firewall and routes:\n%s", when, hostState(t, e.netns))
			}
		}()
		for _, web := range []string{"web", "web2"} {
			if r := e.berth("exec", "-T", "client", "timeout", "10", "wget", "-q", "-O", "-", "http://"+web+"/www"); r.code != 0 || !strings.Contains(r.stdout, "hello from "+web+"\n") {
				t.Errorf("%s: client cannot reach %s by name: %+v", when, web, r)
			}
		}
		for _, from := range []string{"client", "web2"} {
			for _, addr := range []string{outsideIP, "[" + outsideIP6 + "]"} {
				if r := e.berth("exec", "-T", from, "timeout", "10", "wget", "-q", "-O", "-", "http://"+addr+":"+outsideHTTP+"/"); r.code != 0 || !strings.Contains(r.stdout, "outside") {
					t.Errorf("%s: %s cannot reach the outside at %s: %+v", when, from, addr, r)
				}
			}
		}
		for _, p := range []struct{ port, body string }{{port, "hello from web\n"}, {port2, "hello from web2\n"}} {
			for _, from := range []struct{ ns, addr string }{
				{e.outside, net.JoinHostPort(uplinkIP, p.port)},
				{e.outside, net.JoinHostPort(uplinkIP6, p.port)},
				{e.netns, net.JoinHostPort("127.0.0.1", p.port)},
			} {
				eventually(t, 10*time.Second, func() error {
					body, err := httpGetIn(from.ns, from.addr, "/www")
					if err == nil && !strings.Contains(body, p.body) {
						err = fmt.Errorf("%s: body %q", from.addr, body)
					}
					return err
				})
			}
		}
	}
	check("after up")

	// A reboot (or a firewall reload) wipes the host's rules; the next
	// start puts Berth's accepts back.
	e.must("stop", "-t", "1")
	inNamespace(t, e.netns, "iptables-nft", "-F", "FORWARD")
	inNamespace(t, e.netns, "iptables-nft", "-I", "FORWARD", "1", "-j", "DOCKER-USER")
	inNamespace(t, e.netns, "iptables-legacy", "-F", "FORWARD")
	inNamespace(t, e.netns, "ip6tables-nft", "-F", "FORWARD")
	inNamespace(t, e.netns, "nft", "flush chain inet filter forward")
	if rules := foreignRules(t, e.netns); len(rules) != 0 {
		t.Fatalf("rules left after the flush: %v", rules)
	}
	e.must("start")
	check("after the firewall was wiped")
	nft := inNamespace(t, e.netns, "iptables-nft", "-S", "FORWARD")
	var lines []string
	for _, l := range strings.Split(nft, "\n") {
		if strings.HasPrefix(l, "-") {
			lines = append(lines, l)
		}
	}
	// Right after the jump: the pair for berth-* bridges and the custom
	// bridge's own, in either order.
	var after []string
	if len(lines) >= 6 && lines[1] == "-A FORWARD -j DOCKER-USER" {
		for _, l := range lines[2:6] {
			after = append(after, strings.Join(strings.Fields(l)[2:4], " "))
		}
		slices.Sort(after)
	}
	if want := []string{"-i berth-+", "-i " + custom, "-o berth-+", "-o " + custom}; !slices.Equal(after, want) {
		t.Errorf("Berth's accepts (%q) must come right after the DOCKER-USER jump:\n%s", want, nft)
	}

	e.must("down", "-t", "1")
	leaks := nsLeaks(t, e.netns)
	if err := netnstest.Run(e.netns, func() error {
		if _, err := netlink.LinkByName(custom); err == nil {
			leaks = append(leaks, "link "+custom)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(leaks) > 0 {
		t.Fatalf("left in the host after down: %v", leaks)
	}
}
