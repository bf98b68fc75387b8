package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
)

// Config says where a Manager keeps its state and which kernel objects it owns.
type Config struct {
	StateDir string         // $BERTH_ROOT/network
	RunDir   string         // $BERTH_RUN/network; netns bind mounts go in RunDir/netns/<id>
	Table    string         // nftables table name (inet family) owned by this instance
	Pool     []netip.Prefix // default 10.89.0.0/16
	PoolSize int            // prefix length of allocated subnets, default 24
}

// DefaultPool is where subnets come from when Config.Pool is empty.
var DefaultPool = []netip.Prefix{netip.MustParsePrefix("10.89.0.0/16")}

// hostIPAMLock serialises subnet choice and bridge creation across every
// Berth instance on the host, whatever their state dirs, so two instances
// never pick the same free subnet.
const hostIPAMLock = "/run/berth-ipam.lock"

// hostPortsLock does the same for the check-then-add of published ports.
const hostPortsLock = "/run/berth-ports.lock"

// Manager creates and removes networks, sandboxes and endpoints. It is safe
// for concurrent use, including from several processes sharing StateDir.
type Manager struct {
	cfg Config
	fw  firewall
}

// Spec describes a network to create.
type Spec struct {
	Name     string
	Labels   map[string]string
	Subnet   netip.Prefix // optional; allocated from the pool when zero
	Internal bool         // no route out of the host, no masquerade
}

// Network is a created network.
type Network struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Bridge   string            `json:"bridge"`
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
}

// Endpoint is one container's attachment to one network.
type Endpoint struct {
	Network     string       `json:"network"`
	ContainerID string       `json:"containerId"`
	IfName      string       `json:"ifName"`
	HostVeth    string       `json:"hostVeth"`
	IP          netip.Addr   `json:"ip"`
	Prefix      netip.Prefix `json:"prefix"`
	Gateway     netip.Addr   `json:"gateway"`
	MAC         string       `json:"mac"`
	Aliases     []string     `json:"aliases,omitempty"`
}

// endpointRecord is what state keeps per endpoint: the public view plus what
// later connects of the same container need to know.
type endpointRecord struct {
	Endpoint
	DefaultRoute bool `json:"defaultRoute,omitempty"`
}

// record is the JSON file of one network.
type record struct {
	Network   Network                   `json:"network"`
	Endpoints map[string]endpointRecord `json:"endpoints,omitempty"` // by container ID
}

// New returns a Manager for cfg, filling in defaults and creating its
// directories.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" || cfg.RunDir == "" {
		return nil, fmt.Errorf("network manager: state and run dirs are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Table == "" {
		cfg.Table = "berth"
	}
	if len(cfg.Table) > 64 || strings.ContainsAny(cfg.Table, "/\x00 ") {
		return nil, fmt.Errorf("network manager: bad nftables table name %q: %w", cfg.Table, errdefs.ErrInvalidArgument)
	}
	if len(cfg.Pool) == 0 {
		cfg.Pool = DefaultPool
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 24
	}
	if cfg.PoolSize < 8 || cfg.PoolSize > 30 {
		return nil, fmt.Errorf("network manager: pool size /%d out of range /8../30: %w", cfg.PoolSize, errdefs.ErrInvalidArgument)
	}
	for i, p := range cfg.Pool {
		if !p.IsValid() || !p.Addr().Is4() {
			return nil, fmt.Errorf("network manager: pool %s is not an ipv4 prefix: %w", p, errdefs.ErrInvalidArgument)
		}
		cfg.Pool[i] = p.Masked()
	}
	for _, d := range []string{cfg.networksDir(), cfg.netnsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network manager: %w", err)
		}
	}
	return &Manager{cfg: cfg, fw: firewall{table: cfg.Table}}, nil
}

func (c Config) networksDir() string { return filepath.Join(c.StateDir, "networks") }
func (c Config) netnsDir() string    { return filepath.Join(c.RunDir, "netns") }
func (c Config) lockPath() string    { return filepath.Join(c.StateDir, "lock") }

func (m *Manager) recordPath(name string) string {
	return filepath.Join(m.cfg.networksDir(), name+".json")
}

// lock takes this instance's state lock; every read-modify-write of state
// and of this instance's nftables table happens under it.
func (m *Manager) lock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, m.cfg.lockPath())
}

func (m *Manager) load(name string) (*record, error) {
	var r record
	if err := atomicfile.ReadJSON(m.recordPath(name), &r); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("network %q: %w", name, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("network %q: read state: %w", name, err)
	}
	if r.Endpoints == nil {
		r.Endpoints = map[string]endpointRecord{}
	}
	return &r, nil
}

func (m *Manager) save(r *record) error {
	if err := atomicfile.WriteJSON(m.recordPath(r.Network.Name), r, 0o600); err != nil {
		return fmt.Errorf("network %q: write state: %w", r.Network.Name, err)
	}
	return nil
}

func (m *Manager) loadAll() ([]*record, error) {
	ents, err := os.ReadDir(m.cfg.networksDir())
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []*record
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		r, err := m.load(name)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *record) int { return strings.Compare(a.Network.Name, b.Network.Name) })
	return out, nil
}

// Create makes the network's bridge with the gateway address, its nftables
// rules, and its state record.
func (m *Manager) Create(ctx context.Context, s Spec) (Network, error) {
	if err := names.Object("network", s.Name); err != nil {
		return Network{}, err
	}
	if s.Subnet.IsValid() {
		if !s.Subnet.Addr().Is4() || s.Subnet.Bits() > 30 || s.Subnet.Bits() < 8 {
			return Network{}, fmt.Errorf("network %q: subnet %s must be ipv4 between /8 and /30: %w", s.Name, s.Subnet, errdefs.ErrInvalidArgument)
		}
		if s.Subnet.Masked() != s.Subnet {
			return Network{}, fmt.Errorf("network %q: subnet %s has host bits set: %w", s.Name, s.Subnet, errdefs.ErrInvalidArgument)
		}
	}
	l, err := m.lock(ctx)
	if err != nil {
		return Network{}, err
	}
	defer l.Unlock()
	if _, err := os.Stat(m.recordPath(s.Name)); err == nil {
		return Network{}, fmt.Errorf("network %q: %w", s.Name, errdefs.ErrAlreadyExists)
	}

	id, err := randomHex(32)
	if err != nil {
		return Network{}, err
	}
	n := Network{
		ID:       id,
		Name:     s.Name,
		Bridge:   "berth-" + id[:9],
		Internal: s.Internal,
		Labels:   maps.Clone(s.Labels),
		Created:  time.Now().UTC(),
	}
	if err := m.allocateAndCreateBridge(ctx, &n, s.Subnet); err != nil {
		return Network{}, err
	}
	ok := false
	defer func() {
		if !ok {
			// Best effort: leave nothing of a half-made network behind.
			_ = m.fw.removeTagged(ctx, netTag(n.ID))
			_ = deleteLink(n.Bridge)
			_ = os.Remove(m.recordPath(n.Name))
		}
	}()
	if err := m.fw.addNetwork(ctx, n); err != nil {
		return Network{}, fmt.Errorf("network %q: %w", s.Name, err)
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return Network{}, fmt.Errorf("network %q: %w", s.Name, err)
	}
	ok = true
	return n, nil
}

// allocateAndCreateBridge picks the subnet and makes the bridge under the
// host-wide IPAM lock, and writes the record before creating the bridge so
// that a crash leaves state that Remove can clean.
func (m *Manager) allocateAndCreateBridge(ctx context.Context, n *Network, want netip.Prefix) error {
	hl, err := lockfile.Acquire(ctx, hostIPAMLock)
	if err != nil {
		return err
	}
	defer hl.Unlock()
	taken, err := hostPrefixes()
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	for _, r := range all {
		taken = append(taken, r.Network.Subnet)
	}
	if want.IsValid() {
		for _, t := range taken {
			if t.Overlaps(want) {
				return fmt.Errorf("network %q: subnet %s overlaps %s already in use on this host: %w", n.Name, want, t, errdefs.ErrConflict)
			}
		}
		n.Subnet = want
	} else {
		n.Subnet, err = pickSubnet(m.cfg.Pool, m.cfg.PoolSize, taken)
		if err != nil {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
	}
	n.Gateway = n.Subnet.Addr().Next()
	if err := m.save(&record{Network: *n}); err != nil {
		return err
	}
	if err := createBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits())); err != nil {
		_ = deleteLink(n.Bridge)
		_ = os.Remove(m.recordPath(n.Name))
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	return nil
}

// Get returns the network called name.
func (m *Manager) Get(ctx context.Context, name string) (Network, error) {
	if err := names.Object("network", name); err != nil {
		return Network{}, err
	}
	r, err := m.load(name)
	if err != nil {
		return Network{}, err
	}
	return r.Network, nil
}

// List returns every network of this instance, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Network, error) {
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(all))
	for _, r := range all {
		out = append(out, r.Network)
	}
	return out, nil
}

// Remove deletes a network with no endpoints: its rules, bridge and state;
// with the last network the whole nftables table goes.
func (m *Manager) Remove(ctx context.Context, name string) error {
	if err := names.Object("network", name); err != nil {
		return err
	}
	l, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := m.load(name)
	if err != nil {
		return err
	}
	if len(r.Endpoints) > 0 {
		ids := slices.Sorted(maps.Keys(r.Endpoints))
		return fmt.Errorf("network %q has %d connected endpoints (%s): %w", name, len(ids), strings.Join(ids, ", "), errdefs.ErrFailedPrecondition)
	}
	if err := m.fw.removeTagged(ctx, netTag(r.Network.ID)); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if err := deleteLink(r.Network.Bridge); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if err := os.Remove(m.recordPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if err := atomicfile.SyncDir(m.cfg.networksDir()); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	rest, err := m.loadAll()
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		if err := m.fw.deleteTable(ctx); err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// checkContainerID keeps container IDs usable as file names and short enough
// for an nftables rule comment.
func checkContainerID(id string) error {
	if err := names.Object("container", id); err != nil {
		return err
	}
	if len(id) > 100 {
		return fmt.Errorf("container id %q is longer than 100 characters: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}
