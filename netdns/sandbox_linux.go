package netdns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ServerAddr is where a container finds the server: an address of its own
// namespace's loopback, as Docker's 127.0.0.11, so no listener on the host's
// port 53 (dnsmasq, systemd-resolved, a dev DNS) can stand in the way.
var ServerAddr = netip.MustParseAddr("127.0.0.11")

// dnsTable is the nftables table the server keeps in each sandbox.
const dnsTable = "berth-dns"

// nsID identifies one network namespace; a path can come to hold another
// namespace when a container is started again.
type nsID struct{ dev, ino uint64 }

func statNetns(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// sandboxSockets are the server's sockets inside one sandbox: UDP and TCP
// on ServerAddr at the same port, which the sandbox's own rules send port
// 53 to. The port is not 53 itself so that a container may run its own DNS
// server on 0.0.0.0:53, as it can with Docker.
type sandboxSockets struct {
	port uint16
	udp  *net.UDPConn
	tcp  *net.TCPListener
}

// openSandbox binds the sockets inside the namespace at path, on port if it
// is not zero (the port the sandbox's rules already name, kept across server
// restarts so that a client's retransmission still reaches a socket), and
// makes the sandbox's rules send ServerAddr:53 to them.
func openSandbox(path string, port uint16) (*sandboxSockets, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %s: %w", path, err)
	}
	defer ns.Close()
	s, err := bindIn(ns, port)
	if err != nil && port != 0 {
		// Something inside took the port meanwhile: take another, and forget
		// flows still bound to the old one.
		s, err = bindIn(ns, 0)
		if err == nil {
			err = forgetFlows(ns)
		}
	}
	if err != nil {
		if s != nil {
			s.close()
		}
		return nil, fmt.Errorf("sandbox %s: %w", path, err)
	}
	if err := redirect(ns, s.port); err != nil {
		s.close()
		return nil, fmt.Errorf("sandbox %s: %w", path, err)
	}
	return s, nil
}

// bindIn creates the sockets on a thread switched into ns. The thread is
// never switched back: Go discards it when the goroutine ends, so no other
// code ever runs in the sandbox.
func bindIn(ns netns.NsHandle, port uint16) (*sandboxSockets, error) {
	type result struct {
		s   *sandboxSockets
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			done <- result{err: fmt.Errorf("enter sandbox: %w", err)}
			return
		}
		s, err := bindHere(port)
		done <- result{s, err}
	}()
	r := <-done
	return r.s, r.err
}

func bindHere(port uint16) (*sandboxSockets, error) {
	ip := ServerAddr.AsSlice()
	var lastErr error
	// A UDP port whose TCP twin is taken is given back and another tried.
	for range 10 {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: int(port)})
		if err != nil {
			return nil, fmt.Errorf("listen udp %s:%d: %w", ServerAddr, port, err)
		}
		p := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip, Port: int(p)})
		if err == nil {
			return &sandboxSockets{port: p, udp: udp, tcp: tcp}, nil
		}
		udp.Close()
		lastErr = fmt.Errorf("listen tcp %s:%d: %w", ServerAddr, p, err)
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func (s *sandboxSockets) close() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}

// redirect replaces the sandbox's table: queries to ServerAddr:53 go to
// port, and while no socket holds that port (the server is being restarted)
// the refusals the kernel would send are dropped, so the client's resolver
// waits and retries instead of failing the name at once.
//
// UDP is rewritten without connection tracking: the query's destination
// port becomes port and the reply's source port 53 again, both untracked,
// in a chain ahead of conntrack. Each datagram then costs two port writes
// instead of a conntrack lookup and a NAT on its way out and in (and an
// entry made and expired for every new client port, as each lookup of a
// resolver that opens a socket per query has). TCP, a connection's worth of
// packets, keeps the DNAT.
//
// The netlink socket is closed aside, once the rules are in: closing a
// socket that changed nf_tables waits for the kernel to free what its
// commit replaced (nf_tables' release notifier flushes its destroy work,
// an RCU grace period: 3 to 16 ms on this machine's 6.18), and a reload
// opens the sandboxes of an up's starts one after another, under its lock:
// with the close in line, 20 new sandboxes slept about 100 ms in it while
// their starts waited for the publication (docs/performance.md).
func redirect(ns netns.NsHandle, port uint16) error {
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer closeAside(c)
	t := &nftables.Table{Name: dnsTable, Family: nftables.TableFamilyIPv4}
	// Adding then deleting makes the delete succeed whether or not the table
	// existed; the new table follows in the same transaction.
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	nat := c.AddChain(&nftables.Chain{Name: "dnat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	quiet := c.AddChain(&nftables.Chain{Name: "quiet", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	raw := c.AddChain(&nftables.Chain{Name: "udp", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	addr := ServerAddr.As4()
	// ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:port
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: append(matchServer(16, unix.IPPROTO_TCP, 2, 53),
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	)})
	// ip daddr 127.0.0.11 udp dport 53 notrack udp dport set port
	c.AddRule(&nftables.Rule{Table: t, Chain: raw, Exprs: append(matchServer(16, unix.IPPROTO_UDP, 2, 53),
		setUDPPort(2, port)...)})
	// ip saddr 127.0.0.11 udp sport port notrack udp sport set 53
	c.AddRule(&nftables.Rule{Table: t, Chain: raw, Exprs: append(matchServer(12, unix.IPPROTO_UDP, 0, port),
		setUDPPort(0, 53)...)})
	// ip saddr 127.0.0.11 icmp type destination-unreachable drop
	c.AddRule(&nftables.Rule{Table: t, Chain: quiet, Exprs: append(matchServerProto(12, unix.IPPROTO_ICMP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{3}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)})
	// ip saddr 127.0.0.11 tcp flags & rst != 0 drop
	c.AddRule(&nftables.Rule{Table: t, Chain: quiet, Exprs: append(matchServerProto(12, unix.IPPROTO_TCP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", dnsTable, err)
	}
	return nil
}

// closeAside closes redirect's netlink socket without the caller waiting
// for it (a variable so that a test can hold it).
var closeAside = func(c *nftables.Conn) { go c.CloseLasting() }

// matchServer matches a packet of proto whose address at the network
// header's offset (12 source, 16 destination) is ServerAddr and whose port
// at the transport header's offset (0 source, 2 destination) is port.
func matchServer(addrOff uint32, proto byte, portOff uint32, port uint16) []expr.Any {
	return append(matchServerProto(addrOff, proto),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	)
}

// matchServerProto matches a packet of proto whose address at the network
// header's offset (12 source, 16 destination) is ServerAddr.
func matchServerProto(addrOff uint32, proto byte) []expr.Any {
	addr := ServerAddr.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// setUDPPort leaves the datagram untracked and writes port at the UDP
// header's offset (0 source, 2 destination), updating its checksum.
func setUDPPort(off uint32, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Notrack{},
		&expr.Immediate{Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseTransportHeader,
			Offset: off, Len: 2, CsumType: expr.CsumTypeInet, CsumOffset: 6},
	}
}

// forgetFlows deletes the sandbox's conntrack entries towards ServerAddr, so
// queries of a flow that was sent to an old port reach the new one.
func forgetFlows(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in sandbox: %w", err)
	}
	defer h.Close()
	f := &netlink.ConntrackFilter{}
	if err := f.AddIP(netlink.ConntrackOrigDstIP, ServerAddr.AsSlice()); err != nil {
		return err
	}
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("forget flows: %w", err)
	}
	return nil
}
