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
	StateDir string // $BERTH_ROOT/network
	RunDir   string // $BERTH_RUN/network; netns bind mounts go in RunDir/netns/<id>
	Table    string // nftables table name (inet family) owned by this instance
	// Pools are where subnets come from when a network names none:
	// DefaultPools when empty.
	Pools []Pool
}

// Pool is a range subnets are cut from, as Docker's default-address-pools.
type Pool struct {
	Base netip.Prefix // an IPv4 or IPv6 prefix
	Size int          // prefix length of each subnet
}

func (p Pool) String() string { return fmt.Sprintf("%s/%d", p.Base, p.Size) }

// DefaultPools: 768 IPv4 /24s, and IPv6 /64s from a unique local prefix.
var DefaultPools = []Pool{
	{Base: netip.MustParsePrefix("10.89.0.0/16"), Size: 24},
	{Base: netip.MustParsePrefix("10.90.0.0/15"), Size: 24},
	{Base: netip.MustParsePrefix("fd89:b3e7:4a00::/40"), Size: 64},
}

// hostIPAMLock serialises subnet choice and bridge creation across every
// Berth instance on the host, whatever their state dirs, so two instances
// never pick the same free subnet.
const hostIPAMLock = "/run/berth-ipam.lock"

// hostPortsLock does the same for the check-then-add of published ports.
const hostPortsLock = "/run/berth-ports.lock"

// Manager creates and removes networks, sandboxes and endpoints. It is safe
// for concurrent use, including from several processes sharing StateDir.
type Manager struct {
	cfg     Config
	fw      firewall
	host    hostFirewall
	checked *wholeCache // networks a connect found whole lately (wholecache.go)
}

// Spec describes a network to create. Zero fields take defaults.
type Spec struct {
	Name   string
	Labels map[string]string
	// IPv4 and IPv6 give subnets, ranges, gateways and reserved addresses;
	// a zero subnet is allocated from the pools. IPv6 is used only with
	// EnableIPv6.
	IPv4, IPv6 IPAM
	EnableIPv6 bool
	// Pools replace the manager's pools for this network (x-berth).
	Pools    []Pool
	Internal bool // no route out of the host, no masquerade
	// Bridge names the bridge (com.docker.network.bridge.name); random
	// "berth-..." when empty.
	Bridge string
	MTU    int  // 0: the kernel's default
	NoICC  bool // containers of the network cannot reach each other
	// HostIP is the default host address of published ports
	// (com.docker.network.bridge.host_binding_ipv4).
	HostIP     netip.Addr
	Attachable bool
	// Options are the driver options as given, kept for inspect.
	Options map[string]string
}

// IPAM is one address family's configuration of a network.
type IPAM struct {
	Subnet  netip.Prefix          `json:"subnet"`
	Gateway netip.Addr            `json:"gateway"`
	Range   netip.Prefix          `json:"ipRange,omitzero"` // containers' addresses come from here
	Aux     map[string]netip.Addr `json:"auxAddresses,omitempty"`
}

// Network is a created network.
type Network struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Bridge string `json:"bridge"`
	// Subnet and Gateway are the IPv4 side (their JSON names predate IPv6).
	Subnet     netip.Prefix          `json:"subnet"`
	Gateway    netip.Addr            `json:"gateway"`
	IPRange    netip.Prefix          `json:"ipRange,omitzero"`
	Aux        map[string]netip.Addr `json:"auxAddresses,omitempty"`
	IPv6       *IPAM                 `json:"ipv6,omitempty"`
	Internal   bool                  `json:"internal,omitempty"`
	NoICC      bool                  `json:"noIcc,omitempty"`
	MTU        int                   `json:"mtu,omitempty"`
	HostIP     netip.Addr            `json:"hostIp,omitzero"`
	Attachable bool                  `json:"attachable,omitempty"`
	Options    map[string]string     `json:"options,omitempty"`
	Labels     map[string]string     `json:"labels,omitempty"`
	Created    time.Time             `json:"created"`
}

// IPv4 returns the IPv4 side of the network.
func (n Network) IPv4() IPAM {
	return IPAM{Subnet: n.Subnet, Gateway: n.Gateway, Range: n.IPRange, Aux: n.Aux}
}

// Endpoint is one container's attachment to one network.
type Endpoint struct {
	Network     string       `json:"network"`
	ContainerID string       `json:"containerId"`
	Name        string       `json:"name,omitempty"` // the container's name
	IfName      string       `json:"ifName"`
	HostVeth    string       `json:"hostVeth"`
	IP          netip.Addr   `json:"ip"`
	Prefix      netip.Prefix `json:"prefix"`
	Gateway     netip.Addr   `json:"gateway"`
	IP6         netip.Addr   `json:"ip6,omitzero"`
	Prefix6     netip.Prefix `json:"prefix6,omitzero"`
	Gateway6    netip.Addr   `json:"gateway6,omitzero"`
	MAC         string       `json:"mac"`
	Aliases     []string     `json:"aliases,omitempty"`
}

// Addrs returns the endpoint's addresses, IPv4 first.
func (e Endpoint) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{e.IP, e.IP6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
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
	// Last are the addresses each container name last had, so a recreated
	// container gets its address back when it is free.
	Last map[string]lastAddrs `json:"last,omitempty"`
}

type lastAddrs struct {
	IP  netip.Addr `json:"ip,omitzero"`
	IP6 netip.Addr `json:"ip6,omitzero"`
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
	if len(cfg.Pools) == 0 {
		cfg.Pools = DefaultPools
	}
	if !slices.ContainsFunc(cfg.Pools, func(p Pool) bool { return p.Base.Addr().Is6() }) {
		// Pools that name only IPv4 keep the default IPv6 pool.
		for _, p := range DefaultPools {
			if p.Base.Addr().Is6() {
				cfg.Pools = append(slices.Clone(cfg.Pools), p)
			}
		}
	}
	for _, p := range cfg.Pools {
		if err := checkPool(p); err != nil {
			return nil, fmt.Errorf("network manager: %w", err)
		}
	}
	for _, d := range []string{cfg.networksDir(), cfg.netnsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network manager: %w", err)
		}
	}
	return &Manager{cfg: cfg, fw: firewall{table: cfg.Table}, host: hostFirewall{instance: cfg.Table}, checked: &wholeCache{ttl: wholeFor}}, nil
}

func (c Config) networksDir() string { return filepath.Join(c.StateDir, "networks") }
func (c Config) netnsDir() string    { return filepath.Join(c.RunDir, "netns") }
func (c Config) lockPath() string    { return filepath.Join(c.StateDir, "lock") }

func (m *Manager) recordPath(name string) string {
	return filepath.Join(m.cfg.networksDir(), name+".json")
}

// SandboxPath is where the network namespace of container id is mounted.
func (m *Manager) SandboxPath(id string) string { return filepath.Join(m.cfg.netnsDir(), id) }

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
	if r.Last == nil {
		r.Last = map[string]lastAddrs{}
	}
	return &r, nil
}

func (m *Manager) save(r *record) error {
	if err := atomicfile.WriteJSON(m.recordPath(r.Network.Name), r, 0o600); err != nil {
		return fmt.Errorf("network %q: write state: %w", r.Network.Name, err)
	}
	return nil
}

// loadAll reads every network's record; one the caller already read under
// the lock it still holds (have) is not read again.
func (m *Manager) loadAll(have ...*record) ([]*record, error) {
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
		if i := slices.IndexFunc(have, func(r *record) bool { return r.Network.Name == name }); i >= 0 {
			out = append(out, have[i])
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

// Create makes the network's bridge with the gateway addresses, its
// nftables rules and its state record. A subnet, range, gateway or
// reserved address that does not fit is errdefs.ErrInvalidArgument; a
// subnet that overlaps another network or a host route is
// errdefs.ErrConflict; nothing is created then.
func (m *Manager) Create(ctx context.Context, s Spec) (Network, error) {
	if err := names.Object("network", s.Name); err != nil {
		return Network{}, err
	}
	if err := CheckSpec(s); err != nil {
		return Network{}, err
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
		ID:         id,
		Name:       s.Name,
		Bridge:     s.Bridge,
		Internal:   s.Internal,
		NoICC:      s.NoICC,
		MTU:        s.MTU,
		HostIP:     s.HostIP,
		Attachable: s.Attachable,
		Options:    maps.Clone(s.Options),
		Labels:     maps.Clone(s.Labels),
		Created:    time.Now().UTC(),
	}
	if n.Bridge == "" {
		n.Bridge = bridgePrefix + id[:9]
	}
	if err := m.allocateAndCreateBridge(ctx, &n, s); err != nil {
		return Network{}, err
	}
	ok := false
	defer func() {
		if !ok {
			// Best effort: leave nothing of a half-made network behind.
			_ = m.fw.removeNetwork(n)
			_ = firewalldUntrust(ctx, n.Bridge)
			_ = m.host.removeBridge(ctx, n.Bridge)
			_ = deleteLink(n.Bridge)
			_ = os.Remove(m.recordPath(n.Name))
			m.dropHostRulesIfLast(ctx)
		}
	}()
	if err := m.addRules(ctx, n); err != nil {
		return Network{}, fmt.Errorf("network %q: %w", s.Name, err)
	}
	ok = true
	return n, nil
}

// addRules adds the network's rules to this instance's table, the rules
// outside it that let its traffic pass a host firewall, and turns on
// forwarding.
func (m *Manager) addRules(ctx context.Context, n Network) error {
	if err := m.fw.addNetwork(n); err != nil {
		return err
	}
	if err := m.host.ensure(ctx, n.Bridge); err != nil {
		return err
	}
	if err := firewalldTrust(ctx, n.Bridge); err != nil {
		return err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if n.IPv6 != nil {
		// As Docker does: IPv6 networks need the host to forward IPv6.
		if err := writeSysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return err
		}
	}
	return nil
}

// allocateAndCreateBridge picks the subnets and makes the bridge under the
// host-wide IPAM lock, and writes the record before creating the bridge so
// that a crash leaves state that Remove can clean.
func (m *Manager) allocateAndCreateBridge(ctx context.Context, n *Network, s Spec) error {
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
		if r.Network.Bridge == n.Bridge {
			return fmt.Errorf("network %q: bridge name %q is used by network %q: %w", n.Name, n.Bridge, r.Network.Name, errdefs.ErrConflict)
		}
		taken = append(taken, r.Network.Subnet)
		if r.Network.IPv6 != nil {
			taken = append(taken, r.Network.IPv6.Subnet)
		}
	}
	if bridgeExists(n.Bridge) {
		return fmt.Errorf("network %q: a link named %q already exists on this host: %w", n.Name, n.Bridge, errdefs.ErrConflict)
	}
	pools := m.cfg.Pools
	if len(s.Pools) > 0 {
		pools = s.Pools
	}
	v4, err := allocate(n.Name, s.IPv4, pools, false, taken)
	if err != nil {
		return err
	}
	n.Subnet, n.Gateway, n.IPRange, n.Aux = v4.Subnet, v4.Gateway, v4.Range, v4.Aux
	if s.EnableIPv6 {
		v6, err := allocate(n.Name, s.IPv6, pools, true, append(taken, n.Subnet))
		if err != nil {
			return err
		}
		n.IPv6 = &v6
	}
	if err := m.save(&record{Network: *n}); err != nil {
		return err
	}
	if err := createBridge(*n); err != nil {
		_ = deleteLink(n.Bridge)
		_ = os.Remove(m.recordPath(n.Name))
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	return nil
}

// allocate completes one family's IPAM: the subnet given (checked against
// what is taken) or the first free one of the family's pools, and the
// gateway (the subnet's first address unless given).
func allocate(network string, want IPAM, pools []Pool, v6 bool, taken []netip.Prefix) (IPAM, error) {
	family := "ipv4"
	if v6 {
		family = "ipv6"
	}
	out := want
	if want.Subnet.IsValid() {
		for _, t := range taken {
			if t.IsValid() && t.Overlaps(want.Subnet) {
				return IPAM{}, fmt.Errorf("network %q: subnet %s overlaps %s, already in use on this host: %w", network, want.Subnet, t, errdefs.ErrConflict)
			}
		}
	} else {
		var fam []Pool
		for _, p := range pools {
			if p.Base.Addr().Is6() == v6 {
				fam = append(fam, p)
			}
		}
		sub, err := pickSubnet(fam, taken)
		if err != nil {
			return IPAM{}, fmt.Errorf("network %q: %s: %w", network, family, err)
		}
		out.Subnet = sub
	}
	if !out.Gateway.IsValid() {
		out.Gateway = out.Subnet.Addr().Next()
	}
	return out, nil
}

// CheckAvailable reports, without changing anything, whether Create would
// refuse s for what is on the host: a subnet that overlaps a route, an
// address or another network (errdefs.ErrConflict), a bridge name in use.
func (m *Manager) CheckAvailable(ctx context.Context, s Spec) error {
	if err := CheckSpec(s); err != nil {
		return err
	}
	taken, err := hostPrefixes()
	if err != nil {
		return err
	}
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	for _, r := range all {
		if s.Bridge != "" && r.Network.Bridge == s.Bridge {
			return fmt.Errorf("bridge name %q is used by network %q: %w", s.Bridge, r.Network.Name, errdefs.ErrConflict)
		}
		taken = append(taken, r.Network.Subnet)
		if r.Network.IPv6 != nil {
			taken = append(taken, r.Network.IPv6.Subnet)
		}
	}
	if s.Bridge != "" && bridgeExists(s.Bridge) {
		return fmt.Errorf("a link named %q already exists on this host: %w", s.Bridge, errdefs.ErrConflict)
	}
	for _, sub := range []netip.Prefix{s.IPv4.Subnet, s.IPv6.Subnet} {
		if t, clash := firstOverlap(sub, taken); sub.IsValid() && clash {
			return fmt.Errorf("subnet %s overlaps %s, already in use on this host: %w", sub, t, errdefs.ErrConflict)
		}
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
// with the last network the whole nftables table goes, and so do the rules
// Berth added to the host's firewall.
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
	m.checked.forget(r.Network.Bridge)
	if err := m.fw.removeNetwork(r.Network); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if err := firewalldUntrust(ctx, r.Network.Bridge); err != nil {
		return fmt.Errorf("network %q: %w", name, err)
	}
	if err := m.host.removeBridge(ctx, r.Network.Bridge); err != nil {
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
		if err := m.dropTable(ctx); err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
		if err := m.host.remove(ctx); err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
	}
	return nil
}

// dropTable deletes the instance's table, after the socket hooks' entries
// of any port rule it still holds (a container whose stop never came).
func (m *Manager) dropTable(ctx context.Context) error {
	hl, err := lockfile.Acquire(ctx, hostPortsLock)
	if err != nil {
		return err
	}
	defer hl.Unlock()
	if err := syncSockLB(ctx, func(p publishedPort) bool { return p.table == m.cfg.Table }); err != nil {
		return err
	}
	return m.fw.deleteTable()
}

// dropHostRulesIfLast takes back the table and the host firewall rules when
// no network is left (after a failed create). Callers hold the lock.
func (m *Manager) dropHostRulesIfLast(ctx context.Context) {
	if rest, err := m.loadAll(); err == nil && len(rest) == 0 {
		_ = m.fw.deleteTable()
		_ = m.host.remove(ctx)
	}
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
