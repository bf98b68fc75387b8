package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chains, sets and maps of a Berth table. The base chains hold only fixed
// rules and are rebuilt atomically on every ensure; per-network and per-port
// rules live in regular chains and in the maps, which ensure never flushes.
const (
	chainGuard       = "guard"
	chainForward     = "forward"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainNetsPost    = "nets-postrouting"
	chainPorts       = "ports"

	// setBridges holds every bridge of the instance.
	setBridges = "bridges"
	// mapInto sends what is forwarded into a bridge to the network's own
	// chain ("into-<id>"); mapOutOf drops what an internal network's bridge
	// would forward anywhere else.
	mapInto  = "into"
	mapOutOf = "out-of"
)

// bridgePrefix starts the name of every bridge Berth names itself.
const bridgePrefix = "berth-"

// intoChain is the regular chain of one network in the forward path.
func intoChain(n Network) string { return "into-" + n.ID[:12] }

// ruleSpec is a rule before it is bound to a table: which chain, what it
// matches and does, and the comment that says whose it is.
type ruleSpec struct {
	chain string
	exprs []expr.Any
	tag   string
}

// Tags are rule comments that identify their owner, so rules are deleted by
// owner and other Berth instances can see which host ports are taken.
//
//	berth net <network-id>
//	berth port <container-id> <tcp|udp> <host-ip|*> <host-port> <container-port>
func netTag(id string) string { return "berth net " + id }

func portTag(containerID string, p Port) string {
	host := "*"
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("berth port %s %s %s %d %d", containerID, p.Protocol, host, p.HostPort, p.ContainerPort)
}

// portTagPrefix matches every port rule of one container.
func portTagPrefix(containerID string) string { return "berth port " + containerID + " " }

// parsePortTag reads a port tag back; ok is false for anything else.
func parsePortTag(s string) (containerID string, p Port, ok bool) {
	f := strings.Fields(s)
	if len(f) != 7 || f[0] != "berth" || f[1] != "port" || strings.Join(f, " ") != s {
		return "", Port{}, false
	}
	if f[3] != "tcp" && f[3] != "udp" {
		return "", Port{}, false
	}
	num := func(s string) (uint16, bool) {
		n, err := strconv.ParseUint(s, 10, 16)
		return uint16(n), err == nil && n != 0 && strconv.FormatUint(n, 10) == s
	}
	hp, ok1 := num(f[5])
	cp, ok2 := num(f[6])
	if !ok1 || !ok2 {
		return "", Port{}, false
	}
	p = Port{Protocol: f[3], HostPort: hp, ContainerPort: cp}
	if f[4] != "*" {
		ip, err := netip.ParseAddr(f[4])
		if err != nil || ip.IsUnspecified() || ip.Zone() != "" || ip.Is4In6() || ip.String() != f[4] {
			return "", Port{}, false
		}
		p.HostIP = ip
	}
	return f[2], p, true
}

// PortsClash reports whether two published ports want the same host socket.
// A port on every address ("*" or 0.0.0.0 / ::) takes it on both families,
// as Docker's default binding does.
func PortsClash(a, b Port) bool {
	if a.Protocol != b.Protocol || a.HostPort != b.HostPort {
		return false
	}
	anyA := !a.HostIP.IsValid() || a.HostIP.IsUnspecified()
	anyB := !b.HostIP.IsValid() || b.HostIP.IsUnspecified()
	return anyA || anyB || a.HostIP == b.HostIP
}

// Expression builders. Address matches read the network header at the
// family's offsets, so each rule that has one first checks the family.

func matchFamily(v6 bool) []expr.Any {
	f := byte(unix.NFPROTO_IPV4)
	if v6 {
		f = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f}},
	}
}

// ifname returns the comparison data for an interface name; a prefix match
// compares only the given bytes, an exact match the NUL-padded name.
func ifname(name string, prefix bool) []byte {
	if prefix {
		return []byte(name)
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func matchIf(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name, false)},
	}
}

// lookupIf looks the interface name up in a set (or a verdict map, vmap).
func lookupIf(key expr.MetaKey, set string, vmap bool) []expr.Any {
	l := &expr.Lookup{SourceRegister: 1, SetName: set}
	if vmap {
		l.IsDestRegSet, l.DestRegister = true, 0
	}
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, l}
}

func matchSaddr(p netip.Prefix) []expr.Any { return matchAddrPrefix(false, p) }

func matchDaddrPrefix(p netip.Prefix) []expr.Any { return matchAddrPrefix(true, p) }

// matchAddrPrefix matches the source or destination address against p,
// after a family check.
func matchAddrPrefix(dst bool, p netip.Prefix) []expr.Any {
	p = p.Masked()
	n := p.Addr().BitLen() / 8
	offset := uint32(12)
	if p.Addr().Is6() {
		offset = 8
	}
	if dst {
		offset += uint32(n)
	}
	mask := make([]byte, n)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return concat(matchFamily(p.Addr().Is6()), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(n)},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(n), Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	})
}

func matchDaddr(a netip.Addr) []expr.Any {
	return matchDaddrPrefix(netip.PrefixFrom(a, a.BitLen()))
}

// matchDaddrLocal is `fib daddr type local`: any address of this host.
func matchDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

func matchL4(proto string) []expr.Any {
	n := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		n = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{n}},
	}
}

func matchDport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}

// matchCtBits is `ct <key> & bits != 0` (state or status flags).
func matchCtBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

// ipsDstNAT is the conntrack status bit of a DNATed connection.
const ipsDstNAT = 1 << 5

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// baseRules are the fixed rules of the base chains.
//
// forward: replies and DNATed (published) connections are accepted first.
// Then whatever enters a bridge goes to its network's chain, which lets in
// only its own bridge's traffic: so no network reaches another, of this
// instance or any other, whatever the bridges are called, and nothing from
// outside reaches a container but through a published port. What leaves an
// internal network's bridge for anywhere else is dropped. An accept here
// only ends this table's evaluation: a drop in another table (a host
// firewall with a FORWARD drop policy) would still drop the packet, which is
// what the rules of hostFirewall are for.
//
// guard: route_localnet, which publishing on 127.0.0.1 needs on each bridge,
// would also let a container address the host's loopback (CVE-2020-8558's
// pattern) and reach services bound to 127.0.0.1 only. Nothing arriving on
// a Berth bridge may be addressed to 127.0.0.0/8. The chain runs after
// conntrack and before destination NAT, so replies to connections DNATed
// from the host's 127.0.0.1 still carry the gateway address here and pass.
func baseRules() []ruleSpec {
	return []ruleSpec{
		{chain: chainGuard, exprs: concat(lookupIf(expr.MetaKeyIIFNAME, setBridges, false),
			matchDaddrPrefix(netip.MustParsePrefix("127.0.0.0/8")), []expr.Any{verdict(expr.VerdictDrop)})},
		{chain: chainForward, exprs: concat(matchCtBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), []expr.Any{verdict(expr.VerdictAccept)})},
		{chain: chainForward, exprs: concat(matchCtBits(expr.CtKeySTATUS, ipsDstNAT), []expr.Any{verdict(expr.VerdictAccept)})},
		{chain: chainForward, exprs: lookupIf(expr.MetaKeyOIFNAME, mapInto, true)},
		{chain: chainForward, exprs: lookupIf(expr.MetaKeyIIFNAME, mapOutOf, true)},
		{chain: chainPrerouting, exprs: []expr.Any{jump(chainPorts)}},
		{chain: chainOutput, exprs: []expr.Any{jump(chainPorts)}},
		{chain: chainPostrouting, exprs: []expr.Any{jump(chainNetsPost)}},
	}
}

// intoRules fill a network's chain: traffic between its own containers
// passes (unless enable_icc is off; this is seen only where br_netfilter
// hands bridged frames to the IP hooks), everything else that would enter
// its bridge is dropped.
func intoRules(n Network) []ruleSpec {
	same := expr.VerdictAccept
	if n.NoICC {
		same = expr.VerdictDrop
	}
	return []ruleSpec{
		{chain: intoChain(n), exprs: concat(matchIf(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), []expr.Any{verdict(same)})},
		{chain: intoChain(n), exprs: []expr.Any{verdict(expr.VerdictDrop)}},
	}
}

// postRules are the network's source NAT rules, tagged with its ID.
func postRules(n Network) []ruleSpec {
	tag := netTag(n.ID)
	var rs []ruleSpec
	add := func(parts ...[]expr.Any) {
		rs = append(rs, ruleSpec{chain: chainNetsPost, exprs: concat(parts...), tag: tag})
	}
	masq := []expr.Any{&expr.Masq{}}
	subnets := []netip.Prefix{n.Subnet}
	if n.IPv6 != nil {
		subnets = append(subnets, n.IPv6.Subnet)
	}
	for _, sub := range subnets {
		if !n.Internal {
			add(matchSaddr(sub), matchIf(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq)
		}
		// Hairpin: a container reaching a published port of a neighbour (or
		// its own) through a host address must see the reply come back via
		// the host.
		add(matchCtBits(expr.CtKeySTATUS, ipsDstNAT), matchSaddr(sub),
			matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), masq)
	}
	// Connections from the host's 127.0.0.1 DNATed into the bridge must not
	// carry a loopback source, which the container could not answer.
	add(matchSaddr(netip.MustParsePrefix("127.0.0.0/8")),
		matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), masq)
	return rs
}

// portRule DNATs one published port to ip, of the port's family; with no
// host address it matches every local address (never traffic merely passing
// through the host).
func portRule(containerID string, ip netip.Addr, p Port) ruleSpec {
	dst := matchDaddrLocal()
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		dst = matchDaddr(p.HostIP)
	}
	fam := byte(unix.NFPROTO_IPV4)
	if ip.Is6() {
		fam = unix.NFPROTO_IPV6
	}
	return ruleSpec{
		chain: chainPorts,
		tag:   portTag(containerID, p),
		exprs: concat(matchFamily(ip.Is6()), dst, matchL4(p.Protocol), matchDport(p.HostPort), []expr.Any{
			&expr.Immediate{Register: 1, Data: ip.AsSlice()},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(fam), RegAddrMin: 1, RegProtoMin: 2},
		}),
	}
}

// chains returns the chain objects of table t; hooks and priorities follow
// nft's conventional dstnat/filter/srcnat slots.
func chains(t *nftables.Table) (base, regular []*nftables.Chain) {
	accept := nftables.ChainPolicyAccept
	base = []*nftables.Chain{
		{Name: chainGuard, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept},
		{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
	}
	regular = []*nftables.Chain{
		{Name: chainNetsPost, Table: t},
		{Name: chainPorts, Table: t},
	}
	return base, regular
}

// sets returns the set and maps of table t. Interface names are strings in
// host order, which nft needs to be told to print them.
func sets(t *nftables.Table) []*nftables.Set {
	host := binaryutil.NativeEndian
	return []*nftables.Set{
		{Name: setBridges, Table: t, KeyType: nftables.TypeIFName, KeyByteOrder: host},
		{Name: mapInto, Table: t, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: host, DataType: nftables.TypeVerdict},
		{Name: mapOutOf, Table: t, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: host, DataType: nftables.TypeVerdict},
	}
}
