package netdns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
)

// Files in the server's directory. The engine writes records.json through
// WriteRecords; the server owns the rest.
const (
	recordsFile   = "records.json"
	recordsLock   = "records.lock"
	serveLock     = "dns.lock"     // held by the server for its whole life
	ensureLock    = "ensure.lock"  // serialises spawn and stop decisions
	controlSocket = "control.sock" // the server's control socket
	portsFile     = "ports.json"   // the port the server uses in each sandbox
)

// Records is everything the server answers from: every Berth network of one
// engine with its endpoints, and the sandboxes (network namespaces) in which
// the server listens at ServerAddr.
type Records struct {
	// Generation grows by one with every WriteRecords; a reload reports
	// the generation it applied.
	Generation uint64
	Networks   []Network
	Sandboxes  []Sandbox
}

// Network is one bridge network.
type Network struct {
	Name string
	// Internal networks have no route out: a container on internal
	// networks only gets no forwarding of outside names.
	Internal  bool
	Endpoints []Endpoint
}

// Endpoint is one container's attachment to a network.
type Endpoint struct {
	ContainerID string
	// PTR is the name reverse lookups of IPs answer, as Docker's
	// "<container name>.<network name>".
	PTR string `json:",omitempty"`
	// IPs are the container's addresses on this network (IPv4, IPv6).
	IPs []netip.Addr
	// Names answered with IPs on this network: service name, container
	// name, aliases, short ID. Replicas of a service share its name, so a
	// query for it returns every replica.
	Names []string
}

// Sandbox is a network namespace the server answers in: it binds
// ServerAddr inside, so the container's resolver never depends on a port of
// the host.
type Sandbox struct {
	// Netns is the path of the namespace (a bind mount of nsfs).
	Netns string
	// ContainerID owns the namespace; names are scoped to the networks
	// its endpoints are on, in Networks order.
	ContainerID string
	// Networks are the container's networks, its first interface's first.
	Networks []string
	// Upstreams replace the host's resolvers for this container ("ip:port",
	// from the service's dns key).
	Upstreams []string `json:",omitempty"`
	// Links are names only this container resolves (links: "db:database"),
	// each to the name it stands for.
	Links map[string]string `json:",omitempty"`
}

// WriteRecords atomically replaces dir/records.json with r, setting
// r.Generation to one more than the generation it replaces, and returns it.
// A lock file serialises concurrent writers so generations never repeat.
func WriteRecords(ctx context.Context, dir string, r Records) (uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("dns records: %w", err)
	}
	l, err := lockfile.Acquire(ctx, filepath.Join(dir, recordsLock))
	if err != nil {
		return 0, fmt.Errorf("dns records: %w", err)
	}
	defer l.Unlock()
	prev, _ := ReadRecords(dir)
	r.Generation = prev.Generation + 1
	if err := atomicfile.WriteJSON(filepath.Join(dir, recordsFile), r, 0o600); err != nil {
		return 0, fmt.Errorf("dns records: %w", err)
	}
	return r.Generation, nil
}

// ReadRecords reads dir/records.json. A missing file is not an error: it
// reads as generation zero with no networks.
func ReadRecords(dir string) (Records, error) {
	var r Records
	err := atomicfile.ReadJSON(filepath.Join(dir, recordsFile), &r)
	if errors.Is(err, os.ErrNotExist) {
		return Records{}, nil
	}
	if err != nil {
		return Records{}, fmt.Errorf("dns records %s: %w", dir, err)
	}
	return r, nil
}
