package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netnstest"
)

// netprobeBin is a static UDP echo server and client that tests mount into
// busybox containers (built by TestMain from testdata/netprobe).
var netprobeBin string

// buildProbe builds the command in pkg static, with no cgo, into dir, so it
// runs in any image.
func buildProbe(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// exec runs a shell command in the service's container and returns its
// output, or fails the test.
func (e *env) sh(service, script string) string {
	e.t.Helper()
	return e.must("exec", "-T", service, "sh", "-c", script).stdout
}

// try runs a shell command in the service's container and reports whether
// it succeeded.
func (e *env) try(service, script string) (string, bool) {
	e.t.Helper()
	r := e.berth("exec", "-T", service, "sh", "-c", script)
	return r.stdout + r.stderr, r.code == 0
}

// inHost runs fn where berth runs: the dirty host's namespace, or here.
func (e *env) inHost(fn func() error) error {
	if e.netns == "" {
		return fn()
	}
	return netnstest.Run(e.netns, fn)
}

// fakeUpstream serves DNS on addr:53 where berth runs, answering
// external.test with 192.0.2.99.
func (e *env) fakeUpstream(addr string) {
	e.t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		switch {
		case !strings.EqualFold(r.Question[0].Name, "external.test."):
			m.Rcode = dns.RcodeNameError
		case r.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 99)})
		}
		w.WriteMsg(m)
	})
	var pc net.PacketConn
	if err := e.inHost(func() (err error) {
		pc, err = reuseAddr.ListenPacket(context.Background(), "udp4", net.JoinHostPort(addr, "53"))
		return err
	}); err != nil {
		e.t.Fatalf("fake upstream: %v", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	e.t.Cleanup(func() { srv.Shutdown() })
}

// TestNetworkKeysMustShowInsideContainers: every network and service key
// is seen from inside: addresses (static, range, IPv6), MAC, MTU, the
// gateway, hostname and domain, extra hosts, the resolver settings, DNS
// names (aliases, links, AAAA, PTR, name.network) and a container's own
// upstream.
func TestNetworkKeysMustShowInsideContainers(t *testing.T) {
	e := newEnv(t)
	r := 10 + rand.IntN(200)
	sub := fmt.Sprintf("172.30.%d", r)
	upstream := fmt.Sprintf("127.77.%d.1", r)
	bridge := fmt.Sprintf("br-e2e-%d", r)
	e.fakeUpstream(upstream)
	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`
name: netkeys
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
    hostname: alpha
    domainname: example.test
    mac_address: "02:42:ac:1e:05:0a"
    dns: [%[3]s]
    dns_search: [svc.example]
    dns_opt: ["ndots:2", "timeout:3"]
    extra_hosts: ["gw:host-gateway", "static.test:192.0.2.7"]
    networks:
      front:
        ipv4_address: %[1]s.10
        ipv6_address: "fd00:e2e:%[2]d::10"
        aliases: [alpha-alias]
  b:
    image: busybox
    command: ["sleep", "3600"]
    links: ["a:linked-a"]
    networks: [front]
networks:
  front:
    driver_opts:
      com.docker.network.bridge.name: %[4]s
      com.docker.network.driver.mtu: "1400"
    enable_ipv6: true
    ipam:
      config:
        - subnet: %[1]s.0/24
          ip_range: %[1]s.128/25
          gateway: %[1]s.254
          aux_addresses: {reserved: %[1]s.128}
        - subnet: "fd00:e2e:%[2]d::/64"
`, sub, r, upstream, bridge)})
	e.downAtEnd("netkeys")
	e.must("up", "-d")

	contains := func(what, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q:\n%s", what, w, got)
			}
		}
	}
	contains("a's eth0", e.sh("a", "ip addr show eth0"), "inet "+sub+".10/24", fmt.Sprintf("inet6 fd00:e2e:%d::10/64", r), "link/ether 02:42:ac:1e:05:0a", "mtu 1400")
	contains("a's routes", e.sh("a", "ip route"), "default via "+sub+".254")
	contains("b's eth0 (first of ip_range, after the aux address)", e.sh("b", "ip addr show eth0"), "inet "+sub+".129/24")
	contains("a's names", e.sh("a", "hostname; cat /proc/sys/kernel/domainname"), "alpha\nexample.test")
	contains("a's /etc/hosts", e.sh("a", "cat /etc/hosts"), sub+".254\tgw", "192.0.2.7\tstatic.test", sub+".10\talpha.example.test alpha")
	contains("a's /etc/resolv.conf", e.sh("a", "cat /etc/resolv.conf"), "nameserver 127.0.0.11\n", "search svc.example\n", "options ndots:2 timeout:3\n")

	contains("b looks up a", e.sh("b", "nslookup a"), "Address: "+sub+".10")
	contains("b looks up a's alias", e.sh("b", "nslookup alpha-alias"), "Address: "+sub+".10")
	contains("b looks up its link", e.sh("b", "nslookup linked-a"), "Address: "+sub+".10")
	contains("b looks up a.network", e.sh("b", "nslookup a.netkeys_front"), "Address: "+sub+".10")
	contains("b looks up a's AAAA", e.sh("b", "nslookup -type=aaaa a"), fmt.Sprintf("fd00:e2e:%d::10", r))
	contains("b looks up a's address", e.sh("b", "nslookup "+sub+".10"), "netkeys-a-1.netkeys_front")
	if out, ok := e.try("a", "nslookup linked-a"); ok && strings.Contains(out, sub) {
		t.Errorf("a resolves b's link: %s", out)
	}
	contains("a's own upstream", e.sh("a", "nslookup -type=a external.test."), "192.0.2.99")
	if out, ok := e.try("b", "nslookup -type=a external.test."); ok && strings.Contains(out, "192.0.2.99") {
		t.Errorf("b (without dns:) used a's upstream: %s", out)
	}

	if err := e.inHost(func() error {
		l, err := netlink.LinkByName(bridge)
		if err == nil && l.Attrs().MTU != 1400 {
			err = fmt.Errorf("mtu %d", l.Attrs().MTU)
		}
		return err
	}); err != nil {
		t.Errorf("bridge %s: %v", bridge, err)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("netkeys")
}

// TestNetworkIsolationMustHold: containers of one network reach each other
// over TCP, UDP and ICMP; across networks (and projects) they reach nothing,
// both ways; enable_icc: false keeps a network's containers apart; an
// internal network has no way out and no outside names.
func TestNetworkIsolationMustHold(t *testing.T) {
	e := newEnv(t)
	serve := `["sh", "-c", "echo up > /www; httpd -p 80 -h /; exec /netprobe udp-serve 9000"]`
	svc := func(name, net string) string {
		return fmt.Sprintf("  %s:\n    image: busybox\n    command: %s\n    volumes: [\"%s:/netprobe:ro\"]\n    networks: [%s]\n", name, serve, netprobeBin, net)
	}
	e.writeProject(map[string]string{
		"compose.yaml": "name: iso\nservices:\n" + svc("a1", "one") + svc("a2", "one") + svc("b", "two") + svc("c1", "noicc") + svc("c2", "noicc") + svc("i1", "inner") + svc("i2", "inner") + `
networks:
  one: {}
  two: {}
  noicc:
    driver_opts: {com.docker.network.bridge.enable_icc: "false"}
  inner:
    internal: true
`,
		"other/compose.yaml": "name: iso2\nservices:\n" + svc("x", "default"),
	})
	e.downAtEnd("iso")
	e.downAtEnd("iso2")
	e.must("up", "-d")
	e.must("-f", "other/compose.yaml", "up", "-d")
	ip := func(service string) string {
		t.Helper()
		out := e.sh(service, "ip -4 -o addr show eth0")
		m := regexp.MustCompile(`inet ([0-9.]+)/`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s's address: %q", service, out)
		}
		return m[1]
	}
	x := regexp.MustCompile(`inet ([0-9.]+)/`).FindStringSubmatch(e.must("-f", "other/compose.yaml", "exec", "-T", "x", "ip", "-4", "-o", "addr", "show", "eth0").stdout)
	if x == nil {
		t.Fatal("no address for iso2's x")
	}
	reach := func(from, to string) (tcp, udp, icmp bool) {
		t.Helper()
		_, tcp = e.try(from, "timeout 5 wget -q -O - http://"+to+"/www")
		_, udp = e.try(from, "/netprobe udp-send "+to+":9000 ping")
		_, icmp = e.try(from, "ping -c 1 -W 2 "+to)
		return
	}
	expect := func(from, to, target string, want bool) {
		t.Helper()
		tcp, udp, icmp := reach(from, target)
		if tcp != want || udp != want || icmp != want {
			t.Errorf("%s -> %s (%s): tcp %v, udp %v, icmp %v; want %v", from, to, target, tcp, udp, icmp, want)
		}
	}
	expect("a1", "a2", ip("a2"), true)
	expect("a1", "b", ip("b"), false)
	expect("b", "a1", ip("a1"), false)
	expect("a1", "iso2's x", x[1], false)
	expect("c1", "c2", ip("c2"), false)
	expect("i1", "i2", ip("i2"), true)
	expect("i1", "a1", ip("a1"), false)
	expect("a1", "i1", ip("i1"), false)
	// Names: an internal container resolves its network's names only, and
	// nothing is forwarded for it.
	if _, ok := e.try("i1", "nslookup i2"); !ok {
		t.Error("i1 cannot resolve i2 on its internal network")
	}
	if out, ok := e.try("i1", "nslookup a1"); ok {
		t.Errorf("i1 resolves a1 of another network: %s", out)
	}
	if routes := e.sh("i1", "ip route"); strings.Contains(routes, "default") {
		t.Errorf("internal container has a default route:\n%s", routes)
	}
	if e.outside != "" {
		if _, ok := e.try("i1", "timeout 5 wget -q -O - http://"+outsideIP+":"+outsideHTTP+"/"); ok {
			t.Error("internal container reached the outside")
		}
		if _, ok := e.try("c1", "timeout 5 wget -q -O - http://"+outsideIP+":"+outsideHTTP+"/"); !ok {
			t.Error("an enable_icc: false container cannot reach the outside")
		}
		// Nothing open beyond published ports: the outside, even with a
		// route to the containers' subnet, reaches none of them.
		inNamespace(t, e.outside, "ip", "route", "add", ip("a1")+"/32", "via", uplinkIP)
		if c, err := dialIn(e.outside, "tcp", net.JoinHostPort(ip("a1"), "80")); err == nil {
			c.Close()
			t.Error("the outside reached a container that publishes nothing")
		}
	}
}

// TestPortFormsMustPublish: every short and long form of ports, as
// berth port and ps report them, reached from the host (and the outside on
// a dirty host), hairpin from containers through the host's address, and
// freed the moment the container stops.
func TestPortFormsMustPublish(t *testing.T) {
	e := newEnv(t)
	p1, p2, p4, p5, p6 := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	p3 := p2 + 1
	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`
name: ports
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo eighty > /www80; mkdir /w81; echo eightyone > /w81/www81; httpd -p 81 -h /w81; httpd -p 80 -h /; exec /netprobe udp-serve 9000"]
    volumes: ["%s:/netprobe:ro"]
    expose: ["8080"]
    networks: [v6]
    ports:
      - "80"
      - "127.0.0.1:%d:80"
      - "%d-%d:80-81"
      - "%d:9000/udp"
      - target: 80
        published: "%d"
        host_ip: 127.0.0.1
        mode: host
      - "[::]:%d:80"
  probe:
    image: busybox
    command: ["sleep", "3600"]
    networks: [v6]
networks:
  v6: {enable_ipv6: true}
`, netprobeBin, p1, p2, p3, p4, p5, p6)})
	e.downAtEnd("ports")
	e.must("up", "-d")

	get := func(addr, path, want string) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			body, err := httpGetIn(e.netns, addr, path)
			if err == nil && !strings.Contains(body, want) {
				err = fmt.Errorf("%s%s: %q", addr, path, body)
			}
			return err
		})
	}
	random := strings.TrimSpace(e.must("port", "web", "80").stdout)
	host, port, err := net.SplitHostPort(random)
	n, _ := strconv.Atoi(port)
	if err != nil || host != "0.0.0.0" || n < 1024 {
		t.Fatalf("berth port web 80 = %q", random)
	}
	get("127.0.0.1:"+port, "/www80", "eighty")
	if got := strings.TrimSpace(e.must("port", "--protocol", "udp", "web", "9000").stdout); got != fmt.Sprintf("0.0.0.0:%d", p4) {
		t.Errorf("berth port --protocol udp web 9000 = %q", got)
	}
	ps := e.must("ps", "--format", "{{.Ports}}").stdout
	for _, want := range []string{"0.0.0.0:" + port + "->80/tcp", fmt.Sprintf("127.0.0.1:%d->80/tcp", p1), fmt.Sprintf("%d->81/tcp", p3), fmt.Sprintf("%d->9000/udp", p4), fmt.Sprintf("[::]:%d->80/tcp", p6)} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps lacks %s:\n%s", want, ps)
		}
	}
	get(fmt.Sprintf("127.0.0.1:%d", p1), "/www80", "eighty")
	get(fmt.Sprintf("127.0.0.1:%d", p2), "/www80", "eighty")
	get(fmt.Sprintf("127.0.0.1:%d", p3), "/www81", "eightyone")
	get(fmt.Sprintf("127.0.0.1:%d", p5), "/www80", "eighty")
	// UDP from the host.
	if err := e.inHost(func() error {
		c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", p4))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("hello udp"))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) != "hello udp" {
			err = fmt.Errorf("echo %q", buf[:n])
		}
		return err
	}); err != nil {
		t.Errorf("udp port %d: %v", p4, err)
	}
	// Through the host's own addresses: from the outside, and from
	// containers (hairpin), the web container itself included.
	hostIP := ""
	if e.outside != "" {
		hostIP = uplinkIP
		get(net.JoinHostPort(uplinkIP6, strconv.Itoa(p6)), "/www80", "eighty")
		outside, err := httpGetIn(e.outside, fmt.Sprintf("%s:%d", uplinkIP, p2), "/www80")
		if err != nil || !strings.Contains(outside, "eighty") {
			t.Errorf("from the outside: %q %v", outside, err)
		}
		if c, err := dialIn(e.outside, "tcp", fmt.Sprintf("%s:%d", uplinkIP, p1)); err == nil {
			c.Close()
			t.Errorf("a port published on 127.0.0.1 is reachable from the outside")
		}
	} else if a, ok := hostIPv4(); ok {
		hostIP = a
	}
	if hostIP != "" {
		for _, from := range []string{"probe", "web"} {
			if out, ok := e.try(from, fmt.Sprintf("timeout 5 wget -q -O - http://%s:%d/www80", hostIP, p2)); !ok || !strings.Contains(out, "eighty") {
				t.Errorf("%s through the host's address: %q", from, out)
			}
		}
	}

	// Freed at once when the container stops: nothing answers, and a
	// program may take the port.
	e.must("stop", "-t", "1", "web")
	if c, err := dialIn(e.netns, "tcp", fmt.Sprintf("127.0.0.1:%d", p1)); err == nil {
		c.Close()
		t.Errorf("port %d still answers after stop", p1)
	}
	if err := e.inHost(func() error {
		l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", p2))
		if err == nil {
			l.Close()
		}
		return err
	}); err != nil {
		t.Errorf("port %d not free after stop: %v", p2, err)
	}
	if out := e.must("ps", "-a", "--format", "{{.Ports}}").stdout; strings.Contains(out, fmt.Sprintf("%d->", p1)) {
		t.Errorf("ps shows ports of a stopped container:\n%s", out)
	}
}

// hostIPv4 is a non-loopback IPv4 address of this host outside Berth's
// bridges, if it has one.
func hostIPv4() (string, bool) {
	links, _ := netlink.LinkList()
	for _, l := range links {
		n := l.Attrs().Name
		if n == "lo" || strings.HasPrefix(n, "berth") || strings.HasPrefix(n, "vberth") || l.Attrs().Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			return a.IP.String(), true
		}
	}
	return "", false
}

// TestNetworkModesMustShareOrSkipNamespaces: service:x and container:name
// join another container's namespace, host uses the host's, none has
// loopback only.
func TestNetworkModesMustShareOrSkipNamespaces(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: modes
services:
  main:
    image: busybox
    command: ["sh", "-c", "echo main > /www; exec httpd -f -p 80 -h /"]
  side:
    image: busybox
    command: ["sleep", "3600"]
    network_mode: "service:main"
  byname:
    image: busybox
    command: ["sleep", "3600"]
    network_mode: "container:modes-main-1"
    depends_on: [main]
  hostnet:
    image: busybox
    command: ["sleep", "3600"]
    network_mode: host
  nonet:
    image: busybox
    command: ["sleep", "3600"]
    network_mode: none
`})
	e.downAtEnd("modes")
	e.must("up", "-d")
	mainAddr := e.sh("main", "ip -4 -o addr show eth0")
	for _, s := range []string{"side", "byname"} {
		if out, ok := e.try(s, "timeout 5 wget -q -O - http://127.0.0.1/www"); !ok || !strings.Contains(out, "main") {
			t.Errorf("%s does not share main's loopback: %q", s, out)
		}
		if got := e.sh(s, "ip -4 -o addr show eth0"); got != mainAddr {
			t.Errorf("%s's eth0 %q, main's %q", s, got, mainAddr)
		}
	}
	var bridge string
	if err := e.inHost(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, "berth-") {
				bridge = l.Attrs().Name
			}
		}
		return err
	}); err != nil || bridge == "" {
		t.Fatalf("no bridge on the host: %v", err)
	}
	if out := e.sh("hostnet", "ip -o link"); !strings.Contains(out, bridge) {
		t.Errorf("host network mode does not see the host's links (%s):\n%s", bridge, out)
	}
	if out := strings.TrimSpace(e.sh("nonet", "ip -o link | wc -l")); out != "1" {
		t.Errorf("network_mode none has %s links, want loopback only:\n%s", out, e.sh("nonet", "ip -o link"))
	}
	e.must("down", "-t", "1")
	e.mustBeGone("modes")
}

// TestNetworkVerbsMustManageExternalNetworks: berth network create makes a
// network that two projects share as external; ls, inspect and port show
// it; rm refuses it while a container uses it; down leaves it; prune
// removes only what nothing uses.
func TestNetworkVerbsMustManageExternalNetworks(t *testing.T) {
	e := newEnv(t)
	r := 10 + rand.IntN(200)
	sub := fmt.Sprintf("10.233.%d", r)
	id := strings.TrimSpace(e.must("network", "create", "--subnet", sub+".0/24", "--gateway", sub+".1", "--label", "team=x", "shared").stdout)
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if r := e.berth("network", "create", "--subnet", sub+".128/25", "clash"); r.code == 0 || !strings.Contains(r.stderr, "overlaps") {
		t.Errorf("overlapping subnet: %+v", r)
	}
	if r := e.berth("network", "create", "-d", "overlay", "ov"); r.code == 0 || !strings.Contains(r.stderr, "overlay") {
		t.Errorf("overlay driver: %+v", r)
	}
	project := func(name, svc string) string {
		return fmt.Sprintf("name: %s\nservices:\n  %s:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    networks: [shared]\nnetworks:\n  shared: {external: true}\n", name, svc)
	}
	e.writeProject(map[string]string{"p1/compose.yaml": project("p1", "x"), "p2/compose.yaml": project("p2", "y")})
	e.downAtEnd("p1")
	e.downAtEnd("p2")
	e.must("-f", "p1/compose.yaml", "up", "-d")
	e.must("-f", "p2/compose.yaml", "up", "-d")
	if out, ok := func() (string, bool) {
		r := e.berth("-f", "p1/compose.yaml", "exec", "-T", "x", "sh", "-c", "timeout 5 ping -c 1 -W 2 p2-y-1 && nslookup y")
		return r.stdout, r.code == 0
	}(); !ok || !strings.Contains(out, "Address: "+sub+".") {
		t.Errorf("x cannot reach y on the shared network: %s", out)
	}

	ls := e.must("network", "ls").stdout
	if !strings.Contains(ls, "NETWORK ID") || !strings.Contains(ls, id[:12]) || !strings.Contains(ls, "shared") {
		t.Errorf("ls:\n%s", ls)
	}
	if q := e.must("network", "ls", "-q").stdout; !strings.Contains(q, id[:12]) {
		t.Errorf("ls -q: %q", q)
	}
	var res []struct {
		Name string
		IPAM struct {
			Config []struct{ Subnet, Gateway string }
		}
		Labels     map[string]string
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(e.must("network", "inspect", "shared").stdout), &res); err != nil || len(res) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	in := res[0]
	if in.IPAM.Config[0].Subnet != sub+".0/24" || in.IPAM.Config[0].Gateway != sub+".1" || in.Labels["team"] != "x" || len(in.Containers) != 2 {
		t.Errorf("inspect: %+v", in)
	}

	if r := e.berth("network", "rm", "shared"); r.code == 0 || !strings.Contains(r.stderr, "p1-x-1") {
		t.Errorf("rm of a used network: %+v", r)
	}
	e.must("-f", "p1/compose.yaml", "down", "-t", "1")
	e.must("-f", "p2/compose.yaml", "stop", "-t", "1")
	e.must("network", "create", "unused")
	prune := e.must("network", "prune", "-f").stdout
	if !strings.Contains(prune, "unused") || strings.Contains(prune, "shared") {
		t.Errorf("prune removed %q; want unused only (a stopped container still uses shared)", prune)
	}
	e.must("-f", "p2/compose.yaml", "down", "-t", "1")
	e.must("network", "rm", "shared")
	if ls := e.must("network", "ls", "-q").stdout; strings.TrimSpace(ls) != "" {
		t.Errorf("networks left: %q", ls)
	}
	e.mustBeGone("p1")
}

// TestDNSMustFindARecreatedContainerAtItsAddress: a recreated container
// keeps its address, and its name answers with it at once.
func TestDNSMustFindARecreatedContainerAtItsAddress(t *testing.T) {
	e := newEnv(t)
	project := func(cmd string) string {
		return "name: recreate\nservices:\n  a:\n    image: busybox\n    command: [\"sleep\", \"" + cmd + "\"]\n  b:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"
	}
	e.writeProject(map[string]string{"compose.yaml": project("3600")})
	e.downAtEnd("recreate")
	e.must("up", "-d")
	before := e.sh("a", "ip -4 -o addr show eth0")
	e.writeProject(map[string]string{"compose.yaml": project("3601")})
	e.must("up", "-d")
	after := e.sh("a", "ip -4 -o addr show eth0")
	if before != after {
		t.Errorf("address changed across recreate: %q -> %q", before, after)
	}
	m := regexp.MustCompile(`inet ([0-9.]+)/`).FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("address %q", after)
	}
	if out := e.sh("b", "nslookup a"); !strings.Contains(out, "Address: "+m[1]) {
		t.Errorf("b resolves a to:\n%s", out)
	}
}
