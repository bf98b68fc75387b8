package netdns

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ttl is short because container addresses change on every recreate and a
// stale answer would outlive the container it names.
const ttl = 10

// handler is one link of the chain, as in CoreDNS: it answers the query or
// passes it on to the next link.
type handler interface {
	serveDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg)
}

// mux is the dns.Handler every listener shares: it rejects what no link
// should see and hands the rest to the chain with a deadline.
type mux struct {
	ctx   context.Context
	chain handler
}

// queryTimeout bounds the work for one query; stub resolvers give up after
// about five seconds, so an answer after that helps nobody.
const queryTimeout = 5 * time.Second

func (m *mux) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Response {
		return // never answer answers: that is how reflection loops start
	}
	if r.Opcode != dns.OpcodeQuery {
		reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented))
		return
	}
	if len(r.Question) != 1 {
		reply(w, r, new(dns.Msg).SetRcodeFormatError(r))
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, queryTimeout)
	defer cancel()
	m.chain.serveDNS(ctx, w, r)
}

// reply writes m, truncating it to what a UDP client said it can take.
func reply(w dns.ResponseWriter, r, m *dns.Msg) {
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m) // the client is gone or the socket closed: nothing to do
}

func clientAddr(w dns.ResponseWriter) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// index is the lookup form of Records, built once per load and swapped in
// atomically so queries never see a half-applied load.
type index struct {
	generation uint64
	// scope maps a client address to the networks its container is on,
	// the network of that address first.
	scope map[netip.Addr][]*netIndex
}

type netIndex struct {
	name  string
	names map[string][]netip.Addr // normalised name -> addresses
	ptr   map[netip.Addr]string   // address -> FQDN for reverse lookups
}

func normalise(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func newIndex(r Records) *index {
	idx := &index{generation: r.Generation, scope: map[netip.Addr][]*netIndex{}}
	nets := make([]*netIndex, len(r.Networks))
	byContainer := map[string][]*netIndex{}
	for i, n := range r.Networks {
		ni := &netIndex{name: n.Name, names: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
		nets[i] = ni
		for _, ep := range n.Endpoints {
			if !ep.IP.IsValid() {
				continue
			}
			ip := ep.IP.Unmap()
			names := ep.Names
			if ep.Service != "" {
				names = append(names[:len(names):len(names)], ep.Service)
			}
			for _, name := range names {
				key := normalise(name)
				if key == "" || containsAddr(ni.names[key], ip) {
					continue
				}
				ni.names[key] = append(ni.names[key], ip)
				if _, ok := ni.ptr[ip]; !ok {
					ni.ptr[ip] = dns.Fqdn(key)
				}
			}
			id := containerKey(ep)
			if l := byContainer[id]; len(l) == 0 || l[len(l)-1] != ni {
				byContainer[id] = append(l, ni)
			}
		}
	}
	for i, n := range r.Networks {
		for _, ep := range n.Endpoints {
			if !ep.IP.IsValid() {
				continue
			}
			own := nets[i]
			scope := []*netIndex{own}
			for _, other := range byContainer[containerKey(ep)] {
				if other != own {
					scope = append(scope, other)
				}
			}
			idx.scope[ep.IP.Unmap()] = scope
		}
	}
	return idx
}

// containerKey groups endpoints of one container; an endpoint without an ID
// stands alone.
func containerKey(ep Endpoint) string {
	if ep.ContainerID != "" {
		return "id:" + ep.ContainerID
	}
	return "ip:" + ep.IP.String()
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// lookup returns the addresses of name on the first network in scope that
// knows it: a name on the client's own network wins over the same name
// elsewhere, so the answer is an address the client reaches directly.
func lookup(scope []*netIndex, name string) []netip.Addr {
	for _, n := range scope {
		if ips := n.names[name]; len(ips) > 0 {
			return ips
		}
	}
	return nil
}

// recordsHandler answers names of the asking container's networks and
// passes everything else on.
type recordsHandler struct {
	idx  atomic.Pointer[index]
	next handler
}

func (h *recordsHandler) serveDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	idx := h.idx.Load()
	q := r.Question[0]
	var scope []*netIndex
	if idx != nil {
		scope = idx.scope[clientAddr(w)]
	}
	if len(scope) == 0 || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		h.next.serveDNS(ctx, w, r)
		return
	}
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if q.Qtype == dns.TypePTR {
		ip, ok := parseReverse(q.Name)
		if !ok {
			h.next.serveDNS(ctx, w, r)
			return
		}
		for _, n := range scope {
			if target, ok := n.ptr[ip]; ok {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: target})
				reply(w, r, m)
				return
			}
		}
		h.next.serveDNS(ctx, w, r)
		return
	}
	ips := lookup(scope, normalise(q.Name))
	if len(ips) == 0 {
		h.next.serveDNS(ctx, w, r)
		return
	}
	// Every replica in a fresh order: clients that take the first address
	// spread over the replicas, and clients that try them all still can.
	order := rand.Perm(len(ips))
	for _, i := range order {
		ip := ips[i]
		switch {
		case ip.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: ip.AsSlice()})
		case ip.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	// A known name with no record of the asked type is NOERROR with no
	// answer, so resolvers asking A and AAAA together do not fail the name.
	reply(w, r, m)
}

func header(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// parseReverse turns an in-addr.arpa or ip6.arpa name into its address.
func parseReverse(name string) (netip.Addr, bool) {
	name = normalise(name)
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 16, 4)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			n := 31 - i // nibble index from the most significant end
			if n%2 == 0 {
				b[n/2] |= byte(v) << 4
			} else {
				b[n/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
