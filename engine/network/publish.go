package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/lockfile"
)

// Port is one published port.
type Port struct {
	HostIP        netip.Addr // zero (or 0.0.0.0) means every host address
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"
}

func (p Port) String() string {
	s := strconv.Itoa(int(p.HostPort)) + "/" + p.Protocol
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		s = p.HostIP.String() + ":" + s
	}
	return s
}

func checkPort(p Port) error {
	switch {
	case p.Protocol != "tcp" && p.Protocol != "udp":
		return fmt.Errorf("port %d: protocol %q is not tcp or udp: %w", p.ContainerPort, p.Protocol, errdefs.ErrInvalidArgument)
	case p.HostPort == 0:
		return fmt.Errorf("port %d/%s: host port 0 (a random port) is not supported: %w", p.ContainerPort, p.Protocol, errdefs.ErrInvalidArgument)
	case p.ContainerPort == 0:
		return fmt.Errorf("port %s: container port 0: %w", p, errdefs.ErrInvalidArgument)
	case p.HostIP.IsValid() && !p.HostIP.Is4() && !p.HostIP.IsUnspecified():
		return fmt.Errorf("port %s: ipv6 host addresses are not supported: %w", p, errdefs.ErrNotImplemented)
	}
	return nil
}

// Publish makes each host port reach ip (the container's address) by DNAT,
// for traffic from outside and from the host itself, 127.0.0.1 included.
// A port that a host socket or any Berth instance already holds is refused
// with errdefs.ErrConflict, and then nothing is added.
func (m *Manager) Publish(ctx context.Context, containerID string, ip netip.Addr, ports []Port) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	if !ip.Is4() {
		return fmt.Errorf("publish %s: container address %s is not ipv4: %w", containerID, ip, errdefs.ErrInvalidArgument)
	}
	norm := make([]Port, 0, len(ports))
	for _, p := range ports {
		if err := checkPort(p); err != nil {
			return err
		}
		if p.HostIP.IsUnspecified() {
			p.HostIP = netip.Addr{}
		}
		norm = append(norm, p)
	}
	if len(norm) == 0 {
		return nil
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

	taken, err := allPublished(ctx)
	if err != nil {
		return err
	}
	for i, p := range norm {
		for _, t := range taken {
			if portsClash(p, t.port) {
				return fmt.Errorf("port %s is already in use by container %s: %w", p, t.containerID, errdefs.ErrConflict)
			}
		}
		for _, q := range norm[:i] {
			if portsClash(p, q) {
				return fmt.Errorf("port %s is published twice: %w", p, errdefs.ErrConflict)
			}
		}
		if err := probePort(p); err != nil {
			return err
		}
	}
	rules := make([]ruleSpec, 0, len(norm))
	for _, p := range norm {
		rules = append(rules, portRule(containerID, ip, p))
	}
	if err := m.fw.apply(rules); err != nil {
		return fmt.Errorf("publish %s: %w", containerID, err)
	}
	return nil
}

// probePort binds the host socket the port stands for and lets it go: a
// process already listening there would otherwise have its traffic
// silently taken by the DNAT rule.
func probePort(p Port) error {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
	var err error
	if p.Protocol == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			return c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			return l.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %s is already in use: %w", p, errdefs.ErrConflict)
	}
	return fmt.Errorf("port %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
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
	if err := m.fw.removeTagged(ctx, portTagPrefix(containerID)); err != nil {
		return fmt.Errorf("unpublish %s: %w", containerID, err)
	}
	return nil
}
