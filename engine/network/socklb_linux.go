package network

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// Socket-level forwarding of published ports for clients on the host, as
// Cilium's socket load balancing does: BPF programs on the cgroup v2 root
// rewrite the address a host socket connects or sends to from a published
// (address, port, protocol) to the container's, before the route lookup, so
// a host client's packets are never DNATed (each DNATed local datagram is
// routed twice). UDP answers get the published address back as their
// source (recvmsg), and getpeername shows it. The nftables DNAT stays for
// everything else: remote clients, containers (hairpin), other namespaces.
//
// The programs are attached with BPF_PROG_ATTACH and BPF_F_ALLOW_MULTI, so
// they stay attached when the command that attached them exits, beside
// anyone else's; a later command finds them again by name among the root
// cgroup's programs (BPF_PROG_QUERY) and reaches the map through them.
// Nothing is pinned, so there is no bpffs to mount and no pin to outlive an
// attachment. The map is derived from the nftables port rules of every
// Berth table in this network namespace, under the host ports lock, after
// rules are added and before they are removed: an entry never exists
// without its DNAT rule, so a crash leaves at most rules without entries
// (host clients then take the DNAT path), which the next sync repairs.

const (
	lbPortsMap  = "berth_ports"
	lbRevNATMap = "berth_revnat"
	// lbKeySize: netns or socket cookie (8), address (16), port in network
	// order (2), protocol (1), family 4 or 6 (1), padding (4).
	lbKeySize = 32
	// lbValueSize: address (16), port in network order (2), padding (2).
	lbValueSize = 20
	// lbPortsMax bounds the published (address, port, protocol) entries:
	// a port on every address takes one per host address.
	lbPortsMax = 16384
	// lbRevNATMax bounds the sockets whose peer is remembered (LRU: the
	// oldest go first).
	lbRevNATMax = 32768
)

// Offsets in struct bpf_sock_addr (include/uapi/linux/bpf.h).
const (
	ctxUserIP4  = 4
	ctxUserIP6  = 8
	ctxUserPort = 24
	ctxProtocol = 36
)

// lbHook is one of the eight programs.
type lbHook struct {
	name    string
	attach  ebpf.AttachType
	family  int  // 4 or 6
	forward bool // connect/sendmsg (rewrite to the container) or back
}

var lbHooks = []lbHook{
	{"berth_connect4", ebpf.AttachCGroupInet4Connect, 4, true},
	{"berth_connect6", ebpf.AttachCGroupInet6Connect, 6, true},
	{"berth_sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, 4, true},
	{"berth_sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, 6, true},
	{"berth_recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, 4, false},
	{"berth_recvmsg6", ebpf.AttachCGroupUDP6Recvmsg, 6, false},
	{"berth_peername4", ebpf.AttachCgroupInet4GetPeername, 4, false},
	{"berth_peername6", ebpf.AttachCgroupInet6GetPeername, 6, false},
}

// lbKey is a key of either map: in the ports map the cookie is the network
// namespace's (only sockets of the namespace that published are rewritten),
// in the reverse map the socket's.
type lbKey struct {
	cookie uint64
	addr   netip.Addr
	port   uint16
	proto  uint8
}

func (k lbKey) marshal() []byte {
	b := make([]byte, lbKeySize)
	binary.NativeEndian.PutUint64(b[0:8], k.cookie)
	copy(b[8:24], k.addr.AsSlice())
	binary.BigEndian.PutUint16(b[24:26], k.port)
	b[26] = k.proto
	b[27] = 6
	if k.addr.Is4() {
		b[27] = 4
	}
	return b
}

func unmarshalLBKey(b []byte) (lbKey, bool) {
	if len(b) != lbKeySize {
		return lbKey{}, false
	}
	k := lbKey{cookie: binary.NativeEndian.Uint64(b[0:8]), port: binary.BigEndian.Uint16(b[24:26]), proto: b[26]}
	switch b[27] {
	case 4:
		k.addr = netip.AddrFrom4([4]byte(b[8:12]))
	case 6:
		k.addr = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return lbKey{}, false
	}
	return k, true
}

// lbValue is where a key leads (ports map) or what a socket's peer was
// (reverse map).
type lbValue struct {
	addr netip.Addr
	port uint16
}

func (v lbValue) marshal() []byte {
	b := make([]byte, lbValueSize)
	copy(b[0:16], v.addr.AsSlice())
	binary.BigEndian.PutUint16(b[16:18], v.port)
	return b
}

func unmarshalLBValue(b []byte, v4 bool) (lbValue, bool) {
	if len(b) != lbValueSize {
		return lbValue{}, false
	}
	v := lbValue{addr: netip.AddrFrom16([16]byte(b[0:16])), port: binary.BigEndian.Uint16(b[16:18])}
	if v4 {
		v.addr = netip.AddrFrom4([4]byte(b[0:4]))
	}
	return v, true
}

func protoNumber(proto string) uint8 {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// lbEntries is what the ports map must hold for this namespace (cookie):
// every port rule's (host address, port, protocol) to its DNAT target. A
// port on every address stands for each address in local (the host's own,
// loopback included) of the family its rule has.
func lbEntries(cookie uint64, pub []publishedPort, local []netip.Addr) map[lbKey]lbValue {
	out := map[lbKey]lbValue{}
	add := func(addr netip.Addr, p publishedPort, to netip.Addr) {
		if !to.IsValid() || addr.Is4() != to.Is4() {
			return
		}
		out[lbKey{cookie: cookie, addr: addr, port: p.port.HostPort, proto: protoNumber(p.port.Protocol)}] = lbValue{addr: to, port: p.port.ContainerPort}
	}
	for _, p := range pub {
		for _, to := range []netip.Addr{p.to4, p.to6} {
			if p.port.HostIP.IsValid() {
				add(p.port.HostIP, p, to)
				continue
			}
			for _, a := range local {
				add(a, p, to)
			}
		}
	}
	return out
}

// localAddrs are this namespace's addresses a host client can connect to
// without a zone: link-local ones are left to the DNAT.
func localAddrs() ([]netip.Addr, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		if ip = ip.Unmap(); forwardable(ip) {
			out = append(out, ip)
		}
	}
	return out, nil
}

// forwardable says whether a host address can key the ports map: not a
// link-local one (a client needs a zone for it: DNAT's), nor multicast or
// unspecified.
func forwardable(ip netip.Addr) bool {
	return !ip.IsLinkLocalUnicast() && !ip.IsMulticast() && !ip.IsUnspecified()
}

// netnsCookie is the kernel's cookie of the calling thread's network
// namespace, as bpf_get_netns_cookie gives it to the programs.
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

// cgroup2Root is where the cgroup v2 hierarchy's root is mounted
// (/sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid
// one), or "" without one.
func cgroup2Root() string {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		return ""
	}
	for _, m := range mounts {
		if m.Root == "/" {
			return m.Mountpoint
		}
	}
	return ""
}

var lbUnsupported sync.Once

// lbOff records that host clients keep the DNAT path, once per process.
func lbOff(ctx context.Context, why error) {
	lbUnsupported.Do(func() {
		slog.DebugContext(ctx, "published ports: no socket-level forwarding for host clients, DNAT only", "reason", why)
	})
}

// errLBUnsupported marks a host where the programs cannot run.
var errLBUnsupported = errors.New("socket-level forwarding unsupported")

// lbAttached is the programs found on the root cgroup and the maps they
// share.
type lbAttached struct {
	progs         map[string]*ebpf.Program // by hook name
	ports, revnat *ebpf.Map
	cgroup        *os.File
}

func (a *lbAttached) close() {
	for _, p := range a.progs {
		p.Close()
	}
	if a.ports != nil {
		a.ports.Close()
	}
	if a.revnat != nil {
		a.revnat.Close()
	}
	if a.cgroup != nil {
		a.cgroup.Close()
	}
}

// findLB opens the root cgroup and finds our programs attached there.
func findLB(root string) (*lbAttached, error) {
	cg, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLBUnsupported, err)
	}
	a := &lbAttached{progs: map[string]*ebpf.Program{}, cgroup: cg}
	for _, h := range lbHooks {
		q, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: h.attach})
		if err != nil {
			a.close()
			return nil, fmt.Errorf("%w: query %s: %w", errLBUnsupported, h.name, err)
		}
		for _, ap := range q.Programs {
			p, err := ebpf.NewProgramFromID(ap.ID)
			if err != nil {
				continue // detached meanwhile
			}
			info, err := p.Info()
			if err != nil || info.Name != h.name || a.progs[h.name] != nil {
				p.Close()
				continue
			}
			a.progs[h.name] = p
			ids, _ := info.MapIDs()
			for _, id := range ids {
				m, err := ebpf.NewMapFromID(id)
				if err != nil {
					continue
				}
				mi, err := m.Info()
				switch {
				case err == nil && mi.Name == lbPortsMap && a.ports == nil && mi.KeySize == lbKeySize && mi.ValueSize == lbValueSize:
					a.ports = m
				case err == nil && mi.Name == lbRevNATMap && a.revnat == nil:
					a.revnat = m
				default:
					m.Close()
				}
			}
		}
	}
	return a, nil
}

// detach takes every program of ours off the root cgroup; the maps go
// with their last program.
func (a *lbAttached) detach() error {
	var errs []error
	for name, p := range a.progs {
		h := hookByName(name)
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: int(a.cgroup.Fd()), Program: p, Attach: h.attach}); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func hookByName(name string) lbHook {
	for _, h := range lbHooks {
		if h.name == name {
			return h
		}
	}
	return lbHook{}
}

// attachLB creates the maps and loads and attaches every program missing
// from a (after a crash in the middle, some may be there); on a failure
// it takes back what it attached.
func attachLB(a *lbAttached) error {
	if a.ports == nil || a.revnat == nil {
		// Programs without their maps are of another layout: replace them
		// all.
		if err := a.detach(); err != nil {
			return err
		}
		for n, p := range a.progs {
			p.Close()
			delete(a.progs, n)
		}
		var err error
		if a.ports == nil {
			if a.ports, err = ebpf.NewMap(&ebpf.MapSpec{Name: lbPortsMap, Type: ebpf.Hash, KeySize: lbKeySize, ValueSize: lbValueSize, MaxEntries: lbPortsMax, Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
				return fmt.Errorf("%w: map: %w", errLBUnsupported, err)
			}
		}
		if a.revnat == nil {
			if a.revnat, err = ebpf.NewMap(&ebpf.MapSpec{Name: lbRevNATMap, Type: ebpf.LRUHash, KeySize: lbKeySize, ValueSize: lbValueSize, MaxEntries: lbRevNATMax}); err != nil {
				return fmt.Errorf("%w: map: %w", errLBUnsupported, err)
			}
		}
	}
	var added []string
	for _, h := range lbHooks {
		if a.progs[h.name] != nil {
			continue
		}
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         h.name,
			Type:         ebpf.CGroupSockAddr,
			AttachType:   h.attach,
			Instructions: lbProgram(h, a.ports.FD(), a.revnat.FD()),
			License:      "Apache-2.0",
		})
		if err == nil {
			err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: int(a.cgroup.Fd()), Program: p, Attach: h.attach, Flags: unix.BPF_F_ALLOW_MULTI})
		}
		if err != nil {
			if p != nil {
				p.Close()
			}
			for _, n := range added {
				_ = link.RawDetachProgram(link.RawDetachProgramOptions{Target: int(a.cgroup.Fd()), Program: a.progs[n], Attach: hookByName(n).attach})
			}
			return fmt.Errorf("%w: %s: %w", errLBUnsupported, h.name, err)
		}
		a.progs[h.name] = p
		added = append(added, h.name)
	}
	return nil
}

// Stack layout of the programs (offsets from r10): the ports key, the
// reverse map's value (the address the socket asked for) and its key.
const (
	stKey    = -32
	stRevVal = -56
	stRevKey = -88
)

// lbProgram is one hook's program. Forward (connect, sendmsg): look the
// destination up by the namespace's cookie; on a hit rewrite it to the
// container's and remember the original under the socket's cookie and the
// new peer. Back (recvmsg, getpeername): look the peer up under the
// socket's cookie and put the original back. Every program returns 1
// (proceed).
func lbProgram(h lbHook, portsFD, revnatFD int) asm.Instructions {
	fam := int64(h.family)
	words := 1
	ipOff := int16(ctxUserIP4)
	if h.family == 6 {
		words, ipOff = 4, ctxUserIP6
	}
	// fill stores the address, port, protocol and family of the context at
	// off on the stack (the cookie goes before them).
	fill := func(off int16) asm.Instructions {
		var ins asm.Instructions
		for i := range words {
			o := int16(4 * i)
			ins = append(ins,
				asm.LoadMem(asm.R2, asm.R6, ipOff+o, asm.Word),
				asm.StoreMem(asm.RFP, off+8+o, asm.R2, asm.Word))
		}
		return append(ins,
			asm.LoadMem(asm.R2, asm.R6, ctxUserPort, asm.Word),
			asm.StoreMem(asm.RFP, off+24, asm.R2, asm.Half),
			asm.LoadMem(asm.R9, asm.R6, ctxProtocol, asm.Word),
			asm.StoreMem(asm.RFP, off+26, asm.R9, asm.Byte),
			asm.StoreImm(asm.RFP, off+27, fam, asm.Byte))
	}
	zero := func(off int16, n int) asm.Instructions {
		var ins asm.Instructions
		for i := range n / 8 {
			ins = append(ins, asm.StoreImm(asm.RFP, off+int16(8*i), 0, asm.DWord))
		}
		return ins
	}
	ins := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	ins = append(ins, zero(stKey, 32)...)
	ins = append(ins, zero(stRevVal, 24)...)
	ins = append(ins, zero(stRevKey, 32)...)
	// lookup builds the key at off (cookie from the helper cookie, then
	// the context's address) and looks it up in the map fd; a miss ends
	// the program, a hit leaves the value's address in r0.
	lookup := func(cookie asm.BuiltinFunc, off int16, fd int) asm.Instructions {
		ins := asm.Instructions{asm.Mov.Reg(asm.R1, asm.R6), cookie.Call(), asm.StoreMem(asm.RFP, off, asm.R0, asm.DWord)}
		ins = append(ins, fill(off)...)
		return append(ins,
			asm.LoadMapPtr(asm.R1, fd),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, int32(off)),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"))
	}
	if !h.forward {
		ins = append(ins, lookup(asm.FnGetSocketCookie, stRevKey, revnatFD)...)
		for i := range words {
			o := int16(4 * i)
			ins = append(ins,
				asm.LoadMem(asm.R2, asm.R0, o, asm.Word),
				asm.StoreMem(asm.R6, ipOff+o, asm.R2, asm.Word))
		}
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.R0, 16, asm.Half),
			asm.StoreMem(asm.R6, ctxUserPort, asm.R2, asm.Word))
		return append(ins, asm.Mov.Imm(asm.R0, 1).WithSymbol("out"), asm.Return())
	}
	ins = append(ins, lookup(asm.FnGetNetnsCookie, stKey, portsFD)...)
	ins = append(ins, asm.Mov.Reg(asm.R7, asm.R0))
	// The reverse value: the address and port asked for.
	for i := range words {
		o := int16(4 * i)
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.RFP, stKey+8+o, asm.Word),
			asm.StoreMem(asm.RFP, stRevVal+o, asm.R2, asm.Word))
	}
	ins = append(ins,
		asm.LoadMem(asm.R2, asm.RFP, stKey+24, asm.Half),
		asm.StoreMem(asm.RFP, stRevVal+16, asm.R2, asm.Half))
	// Rewrite to the container, and key the reverse entry by it.
	for i := range words {
		o := int16(4 * i)
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.R7, o, asm.Word),
			asm.StoreMem(asm.R6, ipOff+o, asm.R2, asm.Word),
			asm.StoreMem(asm.RFP, stRevKey+8+o, asm.R2, asm.Word))
	}
	ins = append(ins,
		asm.LoadMem(asm.R2, asm.R7, 16, asm.Half),
		asm.StoreMem(asm.R6, ctxUserPort, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, stRevKey+24, asm.R2, asm.Half),
		asm.StoreMem(asm.RFP, stRevKey+26, asm.R9, asm.Byte),
		asm.StoreImm(asm.RFP, stRevKey+27, fam, asm.Byte),
		asm.Mov.Reg(asm.R1, asm.R6), asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, stRevKey, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, revnatFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stRevKey),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, stRevVal),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY
		asm.FnMapUpdateElem.Call())
	return append(ins, asm.Mov.Imm(asm.R0, 1).WithSymbol("out"), asm.Return())
}

// syncSockLB makes the ports map hold exactly what the port rules of every
// Berth table of this namespace say (but for those skip names, which are
// about to go), attaching the programs for the first entry and
// detaching them with the last of any namespace. Callers hold the host
// ports lock. On a host without cgroup v2 or the hooks, host clients keep
// the DNAT (said once with BERTH_DEBUG).
func syncSockLB(ctx context.Context, skip func(publishedPort) bool) error {
	err := syncLB(skip)
	if errors.Is(err, errLBUnsupported) {
		lbOff(ctx, err)
		return nil
	}
	return err
}

func syncLB(skip func(publishedPort) bool) error {
	root := cgroup2Root()
	if root == "" {
		return fmt.Errorf("%w: no cgroup2 mounted", errLBUnsupported)
	}
	cookie, err := netnsCookie()
	if err != nil {
		return fmt.Errorf("%w: netns cookie: %w", errLBUnsupported, err)
	}
	pub, err := allPublished()
	if err != nil {
		return err
	}
	if skip != nil {
		pub = slices.DeleteFunc(pub, skip)
	}
	var want map[lbKey]lbValue
	if len(pub) > 0 {
		local, err := localAddrs()
		if err != nil {
			return err
		}
		want = lbEntries(cookie, pub, local)
	}
	a, err := findLB(root)
	if err != nil {
		return err
	}
	defer a.close()
	if len(a.progs) == 0 && len(want) == 0 {
		return nil
	}
	if len(want) > 0 && (len(a.progs) < len(lbHooks) || a.ports == nil || a.revnat == nil) {
		if err := attachLB(a); err != nil {
			return err
		}
	}
	ours, others := len(want), 0 // entries of this namespace, of others
	if a.ports != nil {
		var stale [][]byte
		var kb, vb []byte
		it := a.ports.Iterate()
		for it.Next(&kb, &vb) {
			k, ok := unmarshalLBKey(kb)
			if ok && k.cookie != cookie {
				others++
				continue
			}
			if ok {
				if w, ok := want[k]; ok {
					if v, _ := unmarshalLBValue(vb, k.addr.Is4()); v == w {
						delete(want, k)
						continue
					}
				}
			}
			stale = append(stale, bytes.Clone(kb))
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("socket forwarding map: %w", err)
		}
		for _, k := range stale {
			if err := a.ports.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("socket forwarding map: %w", err)
			}
		}
		for k, v := range want {
			if err := a.ports.Put(k.marshal(), v.marshal()); err != nil {
				return fmt.Errorf("socket forwarding map: %w", err)
			}
		}
	}
	if ours == 0 && others == 0 {
		return a.detach()
	}
	return nil
}

// SockLBObjects names every socket forwarding object of Berth on the
// host: programs attached to the cgroup v2 root, and its maps, which
// outlive the programs only while a process or a pin holds them; for leak
// checks.
func SockLBObjects() ([]string, error) {
	var out []string
	if root := cgroup2Root(); root != "" {
		a, err := findLB(root)
		if err != nil {
			return nil, err
		}
		for _, h := range lbHooks {
			if a.progs[h.name] != nil {
				out = append(out, "bpf program "+h.name+" attached to "+root)
			}
		}
		a.close()
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break // ENOENT: the last one
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if mi, err := m.Info(); err == nil && (mi.Name == lbPortsMap || mi.Name == lbRevNATMap) {
			out = append(out, fmt.Sprintf("bpf map %s (id %d)", mi.Name, id))
		}
		m.Close()
	}
	pins, _ := filepath.Glob("/sys/fs/bpf/berth*")
	for _, p := range pins {
		out = append(out, "bpf pin "+p)
	}
	return out, nil
}

// WatchAddresses derives the socket hooks' entries again whenever an
// address comes or goes in this namespace, until ctx ends: a port
// published on every address follows the host's addresses, and one that
// left the host (it may be another machine's now) is no longer
// redirected. The instance's DNS server runs it, while the instance has
// containers.
func (m *Manager) WatchAddresses(ctx context.Context, log *slog.Logger) {
	updates := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(updates, ctx.Done(), netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { log.Warn("watch host addresses", "err", err) },
	}); err != nil {
		log.Warn("watch host addresses", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			// One sync for a burst (an interface going down takes all of
			// its addresses at once). Link-local addresses never key the
			// map: every veth a start creates gets one, and syncing for it
			// would cost each start a read of every Berth table.
			relevant := addrUpdateMatters(u)
			for len(updates) > 0 {
				relevant = addrUpdateMatters(<-updates) || relevant
			}
			if !relevant {
				continue
			}
			if err := resyncSockLB(ctx); err != nil {
				log.Warn("published ports: follow the host's addresses", "err", err)
			}
		}
	}
}

// addrUpdateMatters says whether an address change can change the ports
// map (localAddrs).
func addrUpdateMatters(u netlink.AddrUpdate) bool {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	return !ok || forwardable(ip.Unmap())
}

func resyncSockLB(ctx context.Context) error {
	hl, err := lockfile.Acquire(ctx, hostPortsLock)
	if err != nil {
		return err
	}
	defer hl.Unlock()
	return syncSockLB(ctx, nil)
}
