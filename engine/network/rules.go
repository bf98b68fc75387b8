package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chains of a Berth table. The base chains hold only fixed rules and are
// rebuilt atomically on every ensure; per-network and per-port rules live in
// the regular chains, which ensure never flushes.
const (
	chainGuard       = "guard"
	chainForward     = "forward"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainNetsForward = "nets-forward"
	chainNetsPost    = "nets-postrouting"
	chainPorts       = "ports"
)

// bridgePrefix starts the name of every Berth bridge of every instance;
// isolation drops forwarding from one of ours to any of them.
const bridgePrefix = "berth-"

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
//	berth port <container-id> <tcp|udp> <host-ip|*> <host-port>
func netTag(id string) string { return "berth net " + id }

func portTag(containerID string, p Port) string {
	host := "*"
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("berth port %s %s %s %d", containerID, p.Protocol, host, p.HostPort)
}

// portTagPrefix matches every port rule of one container.
func portTagPrefix(containerID string) string { return "berth port " + containerID + " " }

// parsePortTag reads a port tag back; ok is false for anything else.
func parsePortTag(s string) (containerID string, p Port, ok bool) {
	f := strings.Fields(s)
	if len(f) != 6 || f[0] != "berth" || f[1] != "port" || strings.Join(f, " ") != s {
		return "", Port{}, false
	}
	if f[3] != "tcp" && f[3] != "udp" {
		return "", Port{}, false
	}
	port, err := strconv.ParseUint(f[5], 10, 16)
	if err != nil || port == 0 || strconv.FormatUint(port, 10) != f[5] {
		return "", Port{}, false
	}
	p = Port{Protocol: f[3], HostPort: uint16(port)}
	if f[4] != "*" {
		ip, err := netip.ParseAddr(f[4])
		if err != nil || !ip.Is4() || ip.IsUnspecified() {
			return "", Port{}, false
		}
		p.HostIP = ip
	}
	return f[2], p, true
}

// portsClash reports whether two published ports want the same host socket.
func portsClash(a, b Port) bool {
	if a.Protocol != b.Protocol || a.HostPort != b.HostPort {
		return false
	}
	anyA := !a.HostIP.IsValid() || a.HostIP.IsUnspecified()
	anyB := !b.HostIP.IsValid() || b.HostIP.IsUnspecified()
	return anyA || anyB || a.HostIP == b.HostIP
}

// Expression builders. Everything matches IPv4 only: payload offsets are
// those of the IPv4 header, so each rule first checks the protocol family.

func matchIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
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

func matchIf(key expr.MetaKey, op expr.CmpOp, name string, prefix bool) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name, prefix)},
	}
}

func matchSaddr(p netip.Prefix) []expr.Any { return matchAddrPrefix(12, p) }

func matchDaddrPrefix(p netip.Prefix) []expr.Any { return matchAddrPrefix(16, p) }

// matchAddrPrefix matches the IPv4 address at offset (12 source, 16
// destination) of the network header against prefix p.
func matchAddrPrefix(offset uint32, p netip.Prefix) []expr.Any {
	p = p.Masked()
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	a := p.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func matchDaddr(a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
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
// forward: replies and DNATed (published) connections are accepted first;
// then the per-network rules decide. Note that an accept here only ends
// this table's evaluation: a drop in another table (a host firewall with a
// FORWARD drop policy in iptables-nft, say) still drops the packet, and we
// never touch other tables.
//
// guard: route_localnet, which publishing on 127.0.0.1 needs on each bridge,
// would also let a container address the host's loopback (CVE-2020-8558's
// pattern) and reach services bound to 127.0.0.1 only. Nothing arriving on
// a Berth bridge may be addressed to 127.0.0.0/8. The chain runs after
// conntrack and before destination NAT, so replies to connections DNATed
// from the host's 127.0.0.1 still carry the gateway address here and pass.
func baseRules() []ruleSpec {
	return []ruleSpec{
		{chain: chainGuard, exprs: concat(matchIPv4(), matchIf(expr.MetaKeyIIFNAME, expr.CmpOpEq, bridgePrefix, true),
			matchDaddrPrefix(netip.MustParsePrefix("127.0.0.0/8")), []expr.Any{verdict(expr.VerdictDrop)})},
		{chain: chainForward, exprs: concat(matchCtBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), []expr.Any{verdict(expr.VerdictAccept)})},
		{chain: chainForward, exprs: concat(matchCtBits(expr.CtKeySTATUS, ipsDstNAT), []expr.Any{verdict(expr.VerdictAccept)})},
		{chain: chainForward, exprs: []expr.Any{jump(chainNetsForward)}},
		{chain: chainPrerouting, exprs: []expr.Any{jump(chainPorts)}},
		{chain: chainOutput, exprs: []expr.Any{jump(chainPorts)}},
		{chain: chainPostrouting, exprs: []expr.Any{jump(chainNetsPost)}},
	}
}

// networkRules are the rules one network adds, all tagged with its ID.
func networkRules(n Network) []ruleSpec {
	tag := netTag(n.ID)
	br := n.Bridge
	var rs []ruleSpec
	add := func(chain string, parts ...[]expr.Any) {
		rs = append(rs, ruleSpec{chain: chain, exprs: concat(parts...), tag: tag})
	}
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	drop := []expr.Any{verdict(expr.VerdictDrop)}
	// Isolation: nothing new goes from this bridge to another Berth bridge,
	// of this instance or any other.
	add(chainNetsForward,
		matchIf(expr.MetaKeyIIFNAME, expr.CmpOpEq, br, false),
		matchIf(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br, false),
		matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridgePrefix, true),
		drop)
	if n.Internal {
		add(chainNetsForward,
			matchIf(expr.MetaKeyIIFNAME, expr.CmpOpEq, br, false),
			matchIf(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br, false),
			drop)
		add(chainNetsForward,
			matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, br, false),
			matchIf(expr.MetaKeyIIFNAME, expr.CmpOpNeq, br, false),
			drop)
	}
	// Container to container on the bridge, and out (when not internal).
	add(chainNetsForward, matchIf(expr.MetaKeyIIFNAME, expr.CmpOpEq, br, false), accept)

	masq := []expr.Any{&expr.Masq{}}
	if !n.Internal {
		add(chainNetsPost, matchIPv4(), matchSaddr(n.Subnet),
			matchIf(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br, false), masq)
	}
	// Connections from the host's 127.0.0.1 DNATed into the bridge must not
	// carry a loopback source, which the container could not answer.
	add(chainNetsPost, matchIPv4(), matchSaddr(netip.MustParsePrefix("127.0.0.0/8")),
		matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, br, false), masq)
	// Hairpin: a container reaching a published port of a neighbour (or its
	// own) through a host address must see the reply come back via the host.
	add(chainNetsPost, matchIPv4(), matchCtBits(expr.CtKeySTATUS, ipsDstNAT), matchSaddr(n.Subnet),
		matchIf(expr.MetaKeyOIFNAME, expr.CmpOpEq, br, false), masq)
	return rs
}

// portRule DNATs one published port to ip; with no host address it matches
// every local address (never traffic merely passing through the host).
func portRule(containerID string, ip netip.Addr, p Port) ruleSpec {
	dst := matchDaddrLocal()
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		dst = matchDaddr(p.HostIP)
	}
	a := ip.As4()
	return ruleSpec{
		chain: chainPorts,
		tag:   portTag(containerID, p),
		exprs: concat(matchIPv4(), dst, matchL4(p.Protocol), matchDport(p.HostPort), []expr.Any{
			&expr.Immediate{Register: 1, Data: a[:]},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
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
		{Name: chainNetsForward, Table: t},
		{Name: chainNetsPost, Table: t},
		{Name: chainPorts, Table: t},
	}
	return base, regular
}
