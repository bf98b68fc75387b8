package hostside

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/netdns"
)

// SyncDNS publishes the current endpoints of every network to the DNS
// server, starting it if needed, and returns once it answers in every
// sandbox; with no networks left the server is stopped. Concurrent calls
// (the starts of one up level) share a publication.
func (h *Host) SyncDNS(ctx context.Context) error {
	return h.dnsSync.do(ctx, h.publishDNS)
}

func (h *Host) publishDNS(ctx context.Context) error {
	recs, err := h.dnsRecords(ctx)
	if err != nil {
		return err
	}
	if err := netdns.Ensure(ctx, h.DNSDir(), recs, h.spawnDNS); err != nil {
		return err
	}
	if len(recs.Networks) == 0 {
		return netdns.Stop(ctx, h.DNSDir())
	}
	return nil
}

// DropDNS publishes records after endpoints went away. It never starts a
// server: the names it drops belong to containers that are gone.
// Concurrent calls (the teardowns of one down) share a publication.
func (h *Host) DropDNS(ctx context.Context) error {
	return h.dnsDrop.do(ctx, h.unpublishDNS)
}

func (h *Host) unpublishDNS(ctx context.Context) error {
	recs, err := h.dnsRecords(ctx)
	if err != nil {
		return err
	}
	return netdns.Update(ctx, h.DNSDir(), recs)
}

// dnsRecords gathers every network's endpoints, and one sandbox for each
// container attached to a network, with the container's resolver settings.
func (h *Host) dnsRecords(ctx context.Context) (netdns.Records, error) {
	nets, err := h.Networks.List(ctx)
	if err != nil {
		return netdns.Records{}, err
	}
	var recs netdns.Records
	type attached struct {
		ifName, network string
	}
	byContainer := map[string][]attached{}
	for _, n := range nets {
		eps, err := h.Networks.Endpoints(ctx, n.Name)
		if err != nil {
			return netdns.Records{}, err
		}
		rn := netdns.Network{Name: n.Name, Internal: n.Internal}
		for _, ep := range eps {
			names := append([]string{ep.Name}, ep.Aliases...)
			rn.Endpoints = append(rn.Endpoints, netdns.Endpoint{
				ContainerID: ep.ContainerID,
				IPs:         ep.Addrs(),
				Names:       names,
				PTR:         ep.Name + "." + n.Name,
			})
			byContainer[ep.ContainerID] = append(byContainer[ep.ContainerID], attached{ep.IfName, n.Name})
		}
		recs.Networks = append(recs.Networks, rn)
	}
	settings, _ := h.Containers.Networking()
	for _, id := range slices.Sorted(maps.Keys(byContainer)) {
		att := byContainer[id]
		// eth0 first: its network answers a name that several hold.
		slices.SortFunc(att, func(a, b attached) int { return compareIfName(a.ifName, b.ifName) })
		sb := netdns.Sandbox{Netns: h.Networks.SandboxPath(id), ContainerID: id}
		for _, a := range att {
			sb.Networks = append(sb.Networks, a.network)
		}
		sb.Upstreams, sb.Links = dnsSettings(settings[id])
		recs.Sandboxes = append(recs.Sandboxes, sb)
	}
	return recs, nil
}

// compareIfName orders eth2 before eth10.
func compareIfName(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// spawnDNS starts "berth dns" in its own session so it outlives this CLI;
// ready becomes its fd 3, on which it reports that it serves.
func (h *Host) spawnDNS(ready *os.File) error {
	if err := os.MkdirAll(h.DNSDir(), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(h.DNSDir(), "dns.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(h.helper, "dns", "--dir", h.DNSDir(), "--ready-fd", "3")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{ready}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// watchDNS restarts the DNS server whenever it dies while this shim's
// container runs: the server's end of a held connection is the event, so
// it is back within a spawn's time, well inside a resolver's retry.
func (h *Host) watchDNS(ctx context.Context) {
	netdns.Watch(ctx, h.DNSDir(), h.spawnDNS, func(err error) {
		slog.WarnContext(ctx, "restart dns server", "err", err)
	})
}

// ResolverOf reads a container's dns, dns_search and dns_opt.
func ResolverOf(n container.Networking) (netdns.Resolver, error) {
	r := netdns.Resolver{Search: n.DNSSearch, Options: n.DNSOptions}
	for _, s := range n.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return r, fmt.Errorf("dns: %q is not an ip address: %w", s, errdefs.ErrInvalidArgument)
		}
		r.Nameservers = append(r.Nameservers, a)
	}
	return r, nil
}

// dnsSettings are what the DNS server needs of a container's config: the
// resolvers that replace the host's, and its links.
func dnsSettings(net container.Networking) (upstreams []string, links map[string]string) {
	r, _ := ResolverOf(net)
	for _, a := range r.Nameservers {
		upstreams = append(upstreams, netip.AddrPortFrom(a, 53).String())
	}
	return upstreams, net.Links
}
