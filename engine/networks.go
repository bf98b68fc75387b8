package engine

import (
	"context"

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
	return e.syncDNS(ctx)
}
