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
// WriteRecords; the server writes dns.pid and loaded.
const (
	recordsFile = "records.json"
	recordsLock = "records.lock"
	pidFile     = "dns.pid"
	loadedFile  = "loaded"
	serveLock   = "dns.lock"
	ensureLock  = "ensure.lock"
)

// Records is everything the server answers from: every Berth network on the
// host with its endpoints.
type Records struct {
	// Generation grows by one with every WriteRecords; the server reports
	// the generation it has applied in the loaded file.
	Generation uint64
	Networks   []Network
}

// Network is one bridge network; the server listens on its gateway address.
type Network struct {
	Name      string
	Gateway   netip.Addr
	Subnet    netip.Prefix
	Endpoints []Endpoint
}

// Endpoint is one container's attachment to a network.
type Endpoint struct {
	ContainerID string
	IP          netip.Addr
	// Names answered with IP on this network: service name, container
	// name, aliases, short ID.
	Names []string
	// Service, if set, is answered like a name; replicas of a service share
	// it, so a query for it returns every replica.
	Service string
}

// WriteRecords atomically replaces dir/records.json with r, setting
// r.Generation to one more than the generation it replaces. A lock file
// serialises concurrent writers so generations never repeat.
func WriteRecords(ctx context.Context, dir string, r Records) error {
	_, err := writeRecords(ctx, dir, r)
	return err
}

func writeRecords(ctx context.Context, dir string, r Records) (uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("dns records: %w", err)
	}
	l, err := lockfile.Acquire(ctx, filepath.Join(dir, recordsLock))
	if err != nil {
		return 0, fmt.Errorf("dns records: %w", err)
	}
	defer l.Unlock()
	// Never fall behind what the server reports as loaded, even when
	// records.json was lost or corrupted: Ensure would otherwise take an
	// old report for the new generation.
	prev, _ := ReadRecords(dir)
	r.Generation = max(prev.Generation, loadedGeneration(dir)) + 1
	if err := atomicfile.WriteJSON(filepath.Join(dir, recordsFile), r, 0o644); err != nil {
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
