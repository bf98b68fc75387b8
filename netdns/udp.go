package netdns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// udpServer answers one sandbox's queries over UDP. Its reader blocks in
// recvmmsg on the socket itself (the socket is switched to blocking mode
// and never read through Go's poller): the kernel wakes the reader's
// thread directly when a query arrives, with no netpoller, no goroutine
// wake-up and no hand-off between threads, which on a small machine are
// most of the time a query takes. One call takes every query queued, up to
// a batch; the reader answers the names of the records in place, into
// buffers of its own, and sends the batch's replies with one sendmmsg. No
// out-of-band data is read or written: the socket is bound to ServerAddr,
// so the replies' source is right without it. Only a query for the
// upstream resolvers, which waits on the network, gets a goroutine of its
// own.
type udpServer struct {
	conn    *net.UDPConn
	fd      int
	h       *sandboxHandler
	closing atomic.Bool
	wg      sync.WaitGroup
}

// maxUDPQuery is the largest query read: EDNS0 allows 65535-byte messages,
// but no query is near that; a longer one is cut and fails to unpack.
const maxUDPQuery = 4096

// udpBatch is the most queries one recvmmsg takes.
const udpBatch = 32

func serveUDP(conn *net.UDPConn, h *sandboxHandler) (*udpServer, error) {
	u := &udpServer{conn: conn, h: h, fd: -1}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		u.fd = int(fd)
		serr = unix.SetNonblock(u.fd, false)
	}); err != nil || serr != nil {
		return nil, fmt.Errorf("udp socket: %w", errors.Join(err, serr))
	}
	u.wg.Add(1)
	go u.read()
	return u, nil
}

// close stops the reader (a shutdown wakes it from recvmmsg; closing the
// socket would not) and waits for it and for queries in flight upstream
// (bounded by queryTimeout). The caller closes the socket afterwards.
func (u *udpServer) close() {
	u.closing.Store(true)
	_ = unix.Shutdown(u.fd, unix.SHUT_RD)
	u.wg.Wait()
}

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// udpSlot is one query of a batch: its buffer, its sender, its reply.
type udpSlot struct {
	buf  [maxUDPQuery]byte
	from unix.RawSockaddrAny
	out  []byte
}

func (u *udpServer) read() {
	defer u.wg.Done()
	slots := make([]udpSlot, udpBatch)
	in := make([]mmsghdr, udpBatch)
	inIov := make([]unix.Iovec, udpBatch)
	out := make([]mmsghdr, udpBatch)
	outIov := make([]unix.Iovec, udpBatch)
	for i := range slots {
		slots[i].out = make([]byte, 0, 1232)
		inIov[i].Base = &slots[i].buf[0]
		inIov[i].SetLen(maxUDPQuery)
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.SetIovlen(1)
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&slots[i].from))
	}
	for {
		for i := range in {
			in[i].hdr.Namelen = unix.SizeofSockaddrAny
		}
		n, err := mmsg(unix.SYS_RECVMMSG, u.fd, in, unix.MSG_WAITFORONE)
		if u.closing.Load() {
			return
		}
		if err != nil {
			continue // EINTR, or an ICMP error queued on the socket
		}
		k := 0
		for i := range n {
			s := &slots[i]
			reply := u.answer(s.buf[:in[i].n], &s.from, s.out[:0])
			if reply == nil {
				continue
			}
			s.out = reply[:0] // keep a buffer that grew
			outIov[k].Base = &reply[0]
			outIov[k].SetLen(len(reply))
			out[k].hdr = unix.Msghdr{Name: in[i].hdr.Name, Namelen: in[i].hdr.Namelen, Iov: &outIov[k]}
			out[k].hdr.SetIovlen(1)
			k++
		}
		for sent := 0; sent < k; {
			m, err := mmsg(unix.SYS_SENDMMSG, u.fd, out[sent:k], 0)
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				m = 1 // this client cannot be answered: skip it
			}
			sent += m
		}
	}
}

// answer returns the packed reply to one query into out, or nil: nothing
// to send now (garbage, a response, or a query passed to a goroutine that
// asks upstream and answers itself).
func (u *udpServer) answer(q []byte, from *unix.RawSockaddrAny, out []byte) []byte {
	r := new(dns.Msg)
	if err := r.Unpack(q); err != nil {
		return nil
	}
	m, fwd := u.h.local(r)
	if fwd {
		to, ok := addrPort(from)
		if !ok {
			return nil
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			m := u.h.forward(r, false)
			truncate(r, m)
			if b, err := m.Pack(); err == nil {
				_, _ = u.conn.WriteToUDPAddrPort(b, to)
			}
		}()
		return nil
	}
	if m == nil {
		return nil
	}
	truncate(r, m)
	b, err := m.PackBuffer(out)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// mmsg calls recvmmsg or sendmmsg on the messages.
func mmsg(trap uintptr, fd int, msgs []mmsghdr, flags int) (int, error) {
	n, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// addrPort reads a sender's address.
func addrPort(sa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port), true
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), port), true
	}
	return netip.AddrPort{}, false
}
