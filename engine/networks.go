package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// CreateNetwork creates a network (see network.Manager.Create).
func (e *Engine) CreateNetwork(ctx context.Context, s network.Spec) (network.Network, error) {
	return e.Networks.Create(ctx, s)
}

// RemoveNetwork removes a network and updates DNS, so the DNS server exits
// after the last network goes.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	if err := e.Networks.Remove(ctx, name); err != nil {
		return err
	}
	return e.host.SyncDNS(ctx)
}

// NetworkInfo is a network with the running containers attached to it.
type NetworkInfo struct {
	network.Network
	Containers []NetworkContainer
}

// NetworkContainer is one container's place on a network.
type NetworkContainer struct {
	ID, Name   string
	IPv4, IPv6 netip.Prefix
	MAC        string
}

// InspectNetwork returns the network called name with its containers.
func (e *Engine) InspectNetwork(ctx context.Context, name string) (NetworkInfo, error) {
	n, err := e.Networks.Get(ctx, name)
	if err != nil {
		return NetworkInfo{}, err
	}
	eps, err := e.Networks.Endpoints(ctx, name)
	if err != nil {
		return NetworkInfo{}, err
	}
	info := NetworkInfo{Network: n}
	for _, ep := range eps {
		c := NetworkContainer{ID: ep.ContainerID, Name: ep.Name, IPv4: netip.PrefixFrom(ep.IP, ep.Prefix.Bits()), MAC: ep.MAC}
		if ep.IP6.IsValid() {
			c.IPv6 = netip.PrefixFrom(ep.IP6, ep.Prefix6.Bits())
		}
		info.Containers = append(info.Containers, c)
	}
	return info, nil
}

// NetworkUsers names the containers, running or not, whose configuration
// attaches them to the network.
func (e *Engine) NetworkUsers(ctx context.Context, name string) ([]string, error) {
	cs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		if slices.ContainsFunc(c.Config.Networks, func(a container.Attachment) bool { return a.Network == name }) {
			out = append(out, c.Name)
		}
	}
	return out, nil
}

// PruneNetworks removes every network that no container uses, running or
// not, and returns their names.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, n := range nets {
		users, err := e.NetworkUsers(ctx, n.Name)
		if err != nil {
			return removed, err
		}
		if len(users) > 0 {
			continue
		}
		switch err := e.Networks.Remove(ctx, n.Name); {
		case err == nil:
			removed = append(removed, n.Name)
		case errors.Is(err, errdefs.ErrFailedPrecondition), errors.Is(err, errdefs.ErrNotFound):
			// attached meanwhile, or removed by someone else
		default:
			errs = append(errs, err)
		}
	}
	if len(removed) > 0 {
		if err := e.host.SyncDNS(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// PublishedPorts are the ports a running container publishes, with the host
// ports actually taken (chosen ones included).
func (e *Engine) PublishedPorts(ctx context.Context, id string) ([]network.Published, error) {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ps, err := e.Networks.Published(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	return ps, nil
}

// AllPublishedPorts are the ports every running container publishes, by
// container ID, from one read of the firewall: for listings (ps).
func (e *Engine) AllPublishedPorts(ctx context.Context) (map[string][]network.Published, error) {
	return e.Networks.PublishedAll(ctx)
}
