package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/lockfile"
)

// Port is one published port.
type Port struct {
	HostIP netip.Addr // zero (or 0.0.0.0, ::) means every host address
	// HostPort zero picks a free port from the host's ephemeral range; with
	// HostPortEnd, the first free port of HostPort..HostPortEnd.
	HostPort      uint16
	HostPortEnd   uint16
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"
}

func (p Port) String() string {
	host := strconv.Itoa(int(p.HostPort))
	if p.HostPortEnd > p.HostPort {
		host += "-" + strconv.Itoa(int(p.HostPortEnd))
	}
	s := host + "/" + p.Protocol
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		s = net.JoinHostPort(p.HostIP.String(), host) + "/" + p.Protocol
	}
	return s
}

// CheckPort reports what is wrong with a port on its own.
func CheckPort(p Port) error {
	switch {
	case p.Protocol != "tcp" && p.Protocol != "udp":
		return fmt.Errorf("port %d: protocol %q is not tcp or udp: %w", p.ContainerPort, p.Protocol, errdefs.ErrInvalidArgument)
	case p.ContainerPort == 0:
		return fmt.Errorf("port %s: container port 0: %w", p, errdefs.ErrInvalidArgument)
	case p.HostPortEnd != 0 && (p.HostPort == 0 || p.HostPortEnd < p.HostPort):
		return fmt.Errorf("port %s: bad host port range: %w", p, errdefs.ErrInvalidArgument)
	case p.HostIP.Zone() != "":
		return fmt.Errorf("port %s: host address with a zone: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Target is where a container's published ports lead: its addresses on
// one network.
type Target struct {
	IPv4, IPv6 netip.Addr
}

// Publish makes each host port reach the container by DNAT, for traffic
// from outside and from the host itself, 127.0.0.1 included; a port on
// every host address reaches the container's IPv4 address from IPv4 and,
// when it has one, its IPv6 address from IPv6. A host port of zero becomes
// a free one. It returns the ports as published. A port that a host socket
// or any Berth instance already holds is refused with errdefs.ErrConflict,
// and then nothing is added.
func (m *Manager) Publish(ctx context.Context, containerID string, to Target, ports []Port) ([]Port, error) {
	if err := checkContainerID(containerID); err != nil {
		return nil, err
	}
	if !to.IPv4.Is4() {
		return nil, fmt.Errorf("publish %s: container address %s is not ipv4: %w", containerID, to.IPv4, errdefs.ErrInvalidArgument)
	}
	norm := make([]Port, 0, len(ports))
	for _, p := range ports {
		if err := CheckPort(p); err != nil {
			return nil, err
		}
		if p.HostIP.IsValid() && p.HostIP.Is6() && !to.IPv6.IsValid() {
			return nil, fmt.Errorf("port %s: an ipv6 host address needs a network with enable_ipv6: %w", p, errdefs.ErrInvalidArgument)
		}
		if p.HostIP.Is6() && p.HostIP.IsLoopback() {
			return nil, fmt.Errorf("port %s: publishing on ::1 is not supported (IPv6 loopback cannot be forwarded without a proxy); use [::] or 127.0.0.1: %w", p, errdefs.ErrNotImplemented)
		}
		if p.HostIP.IsUnspecified() && p.HostIP.Is4() {
			p.HostIP = netip.Addr{}
		}
		norm = append(norm, p)
	}
	if len(norm) == 0 {
		return nil, nil
	}
	l, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	hl, err := lockfile.Acquire(ctx, hostPortsLock)
	if err != nil {
		return nil, err
	}
	defer hl.Unlock()

	pub, err := allPublished()
	if err != nil {
		return nil, err
	}
	taken := make([]Port, 0, len(pub))
	for _, t := range pub {
		taken = append(taken, t.port)
	}
	owner := func(p Port) string {
		for _, t := range pub {
			if PortsClash(p, t.port) {
				return t.containerID
			}
		}
		return ""
	}
	var done []Port
	for _, p := range norm {
		if p.HostPort == 0 || p.HostPortEnd > p.HostPort {
			if p, err = pickHostPort(p, taken); err != nil {
				return nil, err
			}
		} else {
			if id := owner(p); id != "" {
				return nil, fmt.Errorf("port %s is already in use by container %.12s: %w", p, id, errdefs.ErrConflict)
			}
			if slices.ContainsFunc(done, func(q Port) bool { return PortsClash(p, q) }) {
				return nil, fmt.Errorf("port %s is published twice: %w", p, errdefs.ErrConflict)
			}
			if err := probePort(p); err != nil {
				return nil, err
			}
		}
		taken = append(taken, p)
		done = append(done, p)
	}
	var rules []ruleSpec
	for _, p := range done {
		switch {
		case !p.HostIP.IsValid(): // every address, both families
			rules = append(rules, portRule(containerID, to.IPv4, p))
			if to.IPv6.IsValid() {
				rules = append(rules, portRule(containerID, to.IPv6, p))
			}
		case p.HostIP.Is4():
			rules = append(rules, portRule(containerID, to.IPv4, p))
		default:
			rules = append(rules, portRule(containerID, to.IPv6, p))
		}
	}
	if err := m.fw.apply(rules); err != nil {
		return nil, fmt.Errorf("publish %s: %w", containerID, err)
	}
	// Host clients through the socket hooks, after the rules they derive
	// from (socklb_linux.go). Without their entries host clients take the
	// DNAT, so a failure here is no reason to fail the start.
	if err := syncSockLB(ctx, nil); err != nil {
		slog.WarnContext(ctx, "published ports: host clients take the DNAT", "container", containerID, "err", err)
	}
	return done, nil
}

// pickHostPort gives p a free host port: the first free one of its range,
// or a random free one of the host's ephemeral range, as Docker does.
func pickHostPort(p Port, taken []Port) (Port, error) {
	lo, hi := p.HostPort, p.HostPortEnd
	random := lo == 0
	if random {
		lo, hi = ephemeralRange()
	}
	n := int(hi) - int(lo) + 1
	start := 0
	if random {
		start = rand.IntN(n)
	}
	for i := range n {
		q := p
		q.HostPort = lo + uint16((start+i)%n)
		q.HostPortEnd = 0
		if slices.ContainsFunc(taken, func(t Port) bool { return PortsClash(q, t) }) || probePort(q) != nil {
			continue
		}
		return q, nil
	}
	if random {
		return Port{}, fmt.Errorf("port %d/%s: no free host port left in %d-%d: %w", p.ContainerPort, p.Protocol, lo, hi, errdefs.ErrUnavailable)
	}
	return Port{}, fmt.Errorf("port %s: every host port of the range is already in use: %w", p, errdefs.ErrConflict)
}

// ephemeralRange is the host's ip_local_port_range.
func ephemeralRange() (uint16, uint16) {
	lo, hi := uint16(32768), uint16(60999)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.ParseUint(f[0], 10, 16)
			z, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 == nil && err2 == nil && a > 0 && z >= a {
				lo, hi = uint16(a), uint16(z)
			}
		}
	}
	return lo, hi
}

// probePort binds the host sockets the port stands for and lets them go: a
// process already listening there would otherwise have its traffic silently
// taken by the DNAT rule. A port on every address is probed on both
// families.
func probePort(p Port) error {
	var addrs []string
	switch {
	case !p.HostIP.IsValid():
		addrs = []string{"0.0.0.0", "::"}
	default:
		addrs = []string{p.HostIP.String()}
	}
	for _, host := range addrs {
		err := probe(p.Protocol, host, p.HostPort)
		if err == nil {
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %s is already in use on this host: %w", p, errdefs.ErrConflict)
		}
		if host == "::" && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
			continue // no IPv6 on this host
		}
		return fmt.Errorf("port %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

func probe(proto, host string, port uint16) error {
	ip := netip.MustParseAddr(host)
	network := proto + "4"
	if ip.Is6() {
		network = proto + "6"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if proto == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// Unpublish removes every port rule of the container; none is fine.
func (m *Manager) Unpublish(ctx context.Context, containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	hl, err := lockfile.Acquire(ctx, hostPortsLock)
	if err != nil {
		return err
	}
	defer hl.Unlock()
	// The socket hooks' entries go before the rules they derive from.
	if err := syncSockLB(ctx, func(p publishedPort) bool {
		return p.table == m.cfg.Table && p.containerID == containerID
	}); err != nil {
		return fmt.Errorf("unpublish %s: %w", containerID, err)
	}
	if err := m.fw.removeTagged(portTagPrefix(containerID)); err != nil {
		return fmt.Errorf("unpublish %s: %w", containerID, err)
	}
	return nil
}

// Published is a port as it is published now: the host port taken, and
// the families that reach the container through it.
type Published struct {
	Port
	IPv4, IPv6 bool
}

// Published lists the ports the container publishes now, as its rules say.
func (m *Manager) Published(ctx context.Context, containerID string) ([]Published, error) {
	all, err := m.PublishedAll(ctx)
	if err != nil {
		return nil, err
	}
	return all[containerID], nil
}

// PublishedAll is Published for every container of this instance, by
// container ID, from one read of the rule set: for listings of many.
func (m *Manager) PublishedAll(ctx context.Context) (map[string][]Published, error) {
	all, err := allPublished()
	if err != nil {
		return nil, err
	}
	out := map[string][]Published{}
	for _, p := range all {
		if p.table == m.cfg.Table {
			out[p.containerID] = append(out[p.containerID], Published{Port: p.port, IPv4: p.v4, IPv6: p.v6})
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b Published) int {
			if a.ContainerPort != b.ContainerPort {
				return int(a.ContainerPort) - int(b.ContainerPort)
			}
			if a.Protocol != b.Protocol {
				return strings.Compare(a.Protocol, b.Protocol)
			}
			return a.HostIP.Compare(b.HostIP)
		})
	}
	return out, nil
}

// CheckHostPorts reports the first of ports (with a fixed host port) that
// is already taken on this host, by a listening socket or by a Berth
// instance (but for the containers in except, which are going away),
// without changing anything: for checks before a project starts.
func CheckHostPorts(ports []Port, except map[string]bool) error {
	pub, err := allPublished()
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.HostPort == 0 || p.HostPortEnd > p.HostPort {
			continue
		}
		for _, t := range pub {
			if PortsClash(p, t.port) && !except[t.containerID] {
				return fmt.Errorf("port %s is already in use by container %.12s: %w", p, t.containerID, errdefs.ErrConflict)
			}
		}
		if err := probePort(p); err != nil {
			return err
		}
	}
	return nil
}
