package netdns

import (
	"errors"
	"net"
	"runtime"
	"sync"

	"github.com/miekg/dns"
)

// udpServer answers one sandbox's queries over UDP. A few readers (one per
// CPU) share the socket; each reads into a buffer of its own and answers a
// name of the records in place: no goroutine per query, no out-of-band data
// per read (the socket is bound to ServerAddr, so the reply's source is
// right without it), and the packed reply reuses the reader's buffer. Only
// a query for the upstream resolvers, which waits on the network, gets a
// goroutine of its own.
type udpServer struct {
	conn *net.UDPConn
	h    *sandboxHandler
	wg   sync.WaitGroup
}

// maxUDPQuery is the largest query read: EDNS0 allows 65535-byte messages,
// but no query is near that; a longer one is cut and fails to unpack.
const maxUDPQuery = 4096

func serveUDP(conn *net.UDPConn, h *sandboxHandler) *udpServer {
	u := &udpServer{conn: conn, h: h}
	for range max(1, runtime.GOMAXPROCS(0)) {
		u.wg.Add(1)
		go u.read()
	}
	return u
}

// close stops the readers and waits for them and for queries in flight
// upstream (bounded by queryTimeout).
func (u *udpServer) close() {
	u.conn.Close()
	u.wg.Wait()
}

func (u *udpServer) read() {
	defer u.wg.Done()
	buf := make([]byte, maxUDPQuery)
	out := make([]byte, 0, dns.MaxMsgSize)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (an ICMP error queued on the socket)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			continue
		}
		m, fwd := u.h.local(r)
		if fwd {
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				m := u.h.forward(r, false)
				truncate(r, m)
				if b, err := m.Pack(); err == nil {
					_, _ = u.conn.WriteToUDPAddrPort(b, from)
				}
			}()
			continue
		}
		if m == nil {
			continue
		}
		truncate(r, m)
		if b, err := m.PackBuffer(out); err == nil {
			_, _ = u.conn.WriteToUDPAddrPort(b, from) // the client is gone: nothing to do
		}
	}
}
