package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// firewalld, when it runs, owns the host's firewall: its forward chain
// rejects whatever enters from an interface of a zone that does not accept
// it, and it rewrites its own nftables table (or iptables chains) on every
// reload, so accepts added there would not last. Instead, as Docker and
// Podman do, each Berth bridge joins a firewalld zone: "trusted", whose
// target accepts everything that enters from it, forwarded or for the host.
// Traffic towards a bridge is either a reply (firewalld accepts established
// connections) or a published port (firewalld accepts DNAT'd connections);
// isolation and internal networks stay the business of Berth's own table.
//
// The bindings are firewalld's runtime configuration only, so that nothing
// of Berth stays in the host's files: they go with the network, and are put
// back by the next command that finds one missing (restore), and at once by
// the instance's DNS server, which watches firewalld reload or start
// (WatchFirewalld). A bridge the user bound to another zone is left alone.
const (
	firewalldName = "org.fedoraproject.FirewallD1"
	firewalldPath = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	firewalldZone = firewalldName + ".zone"
	// trustedZone is the zone Berth's bridges join.
	trustedZone = "trusted"
)

// firewalld is a connection to the system bus on which firewalld runs.
type firewalld struct{ conn *dbus.Conn }

// connectFirewalld returns firewalld when it is on the system bus
// (DBUS_SYSTEM_BUS_ADDRESS, or the standard socket), or nil when there is
// no bus or no firewalld on it. Close it when done.
func connectFirewalld(ctx context.Context) *firewalld {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil
	}
	var running bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, firewalldName).Store(&running); err != nil || !running {
		conn.Close()
		return nil
	}
	return &firewalld{conn: conn}
}

func (f *firewalld) Close() { f.conn.Close() }

func (f *firewalld) call(ctx context.Context, method string, out any, args ...any) error {
	call := f.conn.Object(firewalldName, firewalldPath).CallWithContext(ctx, firewalldZone+"."+method, 0, args...)
	if call.Err != nil {
		return fmt.Errorf("firewalld %s%v: %w", method, args, call.Err)
	}
	if out == nil {
		return nil
	}
	return call.Store(out)
}

// zoneOf is the zone an interface is bound to, "" for none.
func (f *firewalld) zoneOf(ctx context.Context, ifname string) (string, error) {
	var zone string
	err := f.call(ctx, "getZoneOfInterface", &zone, ifname)
	return zone, err
}

// trust binds the bridges that are in no zone to the trusted zone.
func (f *firewalld) trust(ctx context.Context, bridges ...string) error {
	var errs []error
	for _, b := range bridges {
		zone, err := f.zoneOf(ctx, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if zone != "" {
			continue // ours already, or the user's choice
		}
		if err := f.call(ctx, "addInterface", nil, trustedZone, b); err != nil && !firewalldError(err, "ZONE_ALREADY_SET") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// untrust takes a bridge out of the trusted zone (and out of no other).
func (f *firewalld) untrust(ctx context.Context, bridge string) error {
	zone, err := f.zoneOf(ctx, bridge)
	if err != nil || zone != trustedZone {
		return err
	}
	if err := f.call(ctx, "removeInterface", nil, trustedZone, bridge); err != nil && !firewalldError(err, "UNKNOWN_INTERFACE") {
		return err
	}
	return nil
}

// firewalldError reports whether err is firewalld's error with that code
// (firewalld puts the code first in the message: "ZONE_CONFLICT: ...").
func firewalldError(err error, code string) bool {
	var de dbus.Error
	if !errors.As(err, &de) || len(de.Body) == 0 {
		return false
	}
	msg, _ := de.Body[0].(string)
	return strings.HasPrefix(msg, code)
}

// firewalldTrust binds the bridge to the trusted zone when firewalld runs.
func firewalldTrust(ctx context.Context, bridge string) error {
	f := connectFirewalld(ctx)
	if f == nil {
		return nil
	}
	defer f.Close()
	if err := f.trust(ctx, bridge); err != nil {
		return fmt.Errorf("let traffic through firewalld: %w", err)
	}
	return nil
}

// firewalldTrusted reports whether the bridge is bound to a zone, or
// firewalld does not run.
func firewalldTrusted(ctx context.Context, bridge string) bool {
	f := connectFirewalld(ctx)
	if f == nil {
		return true
	}
	defer f.Close()
	zone, err := f.zoneOf(ctx, bridge)
	return err == nil && zone != ""
}

// firewalldUntrust unbinds the bridge when firewalld runs.
func firewalldUntrust(ctx context.Context, bridge string) error {
	f := connectFirewalld(ctx)
	if f == nil {
		return nil
	}
	defer f.Close()
	return f.untrust(ctx, bridge)
}

// firewalldRunning reports whether firewalld manages the host's firewall.
func firewalldRunning() bool {
	f := connectFirewalld(context.Background())
	if f == nil {
		return false
	}
	f.Close()
	return true
}

// WatchFirewalld puts the instance's bridges back into firewalld's trusted
// zone whenever firewalld reloads (which drops its runtime configuration)
// or starts, until ctx ends. It returns at once when there is no system
// bus; firewalld need not run yet. The instance's DNS server runs it: it
// lives exactly as long as the instance has networks with containers.
func (m *Manager) WatchFirewalld(ctx context.Context, log *slog.Logger) {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return
	}
	defer conn.Close()
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(firewalldPath), dbus.WithMatchInterface(firewalldName), dbus.WithMatchMember("Reloaded")); err != nil {
		log.Warn("watch firewalld reloads", "err", err)
		return
	}
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, firewalldName)); err != nil {
		log.Warn("watch firewalld starts", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-signals:
			if !ok {
				return
			}
			if s.Name == "org.freedesktop.DBus.NameOwnerChanged" {
				if len(s.Body) < 3 || s.Body[2] == "" {
					continue // firewalld went away
				}
				// A starting firewalld owns its name before it has loaded
				// its configuration, which would drop bindings made
				// earlier: wait until it reports running.
				if !m.waitFirewalld(ctx, conn) {
					continue
				}
			}
			if err := m.trustBridges(ctx, conn); err != nil {
				log.Warn("put bridges back into firewalld's trusted zone", "err", err)
			}
		}
	}
}

// waitFirewalld waits for a starting firewalld to finish loading its
// configuration (its state property says RUNNING).
func (m *Manager) waitFirewalld(ctx context.Context, conn *dbus.Conn) bool {
	obj := conn.Object(firewalldName, firewalldPath)
	for range 300 {
		v, err := obj.GetProperty(firewalldName + ".state")
		if err == nil {
			if s, _ := v.Value().(string); s == "RUNNING" {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// trustBridges binds every bridge of the instance's networks, under the
// instance's lock so that a network removed meanwhile is not bound again,
// and puts back the accepts in the host's other forward chains (firewalld
// with its iptables backend flushes iptables' chains when it reloads).
func (m *Manager) trustBridges(ctx context.Context, conn *dbus.Conn) error {
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	recs, err := m.loadAll()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	var bridges []string
	for _, r := range recs {
		bridges = append(bridges, r.Network.Bridge)
	}
	return errors.Join(m.host.ensure(ctx, bridges...), (&firewalld{conn: conn}).trust(ctx, bridges...))
}
