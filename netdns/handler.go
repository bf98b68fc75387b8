package netdns

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ttl is zero: container addresses change on every recreate, and an answer
// cached anywhere would outlive the container it names.
const ttl = 0

// index is the lookup form of Records, built once per load and swapped in
// atomically, so a query sees either the old records or the new ones whole.
type index struct {
	generation uint64
	clients    map[string]*client // by sandbox (netns path)
}

// client is what the server knows of the sandbox a query arrives from.
type client struct {
	// scope are the networks of the sandbox's container, its first
	// interface's first: a name on several answers from the first.
	scope []*netIndex
	// links are names only this client resolves, to the name they stand for.
	links map[string]string
	// upstreams replace the host's resolvers when set.
	upstreams []string
	// forward is false when every network of the container is internal:
	// such a container resolves only names of its networks.
	forward bool
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
	idx := &index{generation: r.Generation, clients: map[string]*client{}}
	nets := map[string]*netIndex{}
	internal := map[string]bool{}
	for _, n := range r.Networks {
		ni := &netIndex{name: normalise(n.Name), names: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
		nets[n.Name] = ni
		internal[n.Name] = n.Internal
		for _, ep := range n.Endpoints {
			for _, ip := range ep.IPs {
				if !ip.IsValid() {
					continue
				}
				ip = ip.Unmap()
				for _, name := range ep.Names {
					key := normalise(name)
					if key != "" && !containsAddr(ni.names[key], ip) {
						ni.names[key] = append(ni.names[key], ip)
					}
				}
				if _, ok := ni.ptr[ip]; !ok {
					if ep.PTR != "" {
						ni.ptr[ip] = dns.Fqdn(ep.PTR)
					} else if len(ep.Names) > 0 {
						ni.ptr[ip] = dns.Fqdn(normalise(ep.Names[0]))
					}
				}
			}
		}
	}
	for _, sb := range r.Sandboxes {
		c := &client{upstreams: sb.Upstreams}
		for _, name := range sb.Networks {
			if ni, ok := nets[name]; ok {
				c.scope = append(c.scope, ni)
				c.forward = c.forward || !internal[name]
			}
		}
		if len(sb.Links) > 0 {
			c.links = make(map[string]string, len(sb.Links))
			for alias, target := range sb.Links {
				c.links[normalise(alias)] = normalise(target)
			}
		}
		idx.clients[sb.Netns] = c
	}
	return idx
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
// knows it. "name.network" asks one network of the scope only, as Docker
// allows.
func (c *client) lookup(name string) []netip.Addr {
	if target, ok := c.links[name]; ok {
		name = target
	}
	for _, n := range c.scope {
		if ips := n.names[name]; len(ips) > 0 {
			return ips
		}
	}
	for _, n := range c.scope {
		if short, ok := strings.CutSuffix(name, "."+n.name); ok {
			if target, ok := c.links[short]; ok {
				short = target
			}
			if ips := n.names[short]; len(ips) > 0 {
				return ips
			}
		}
	}
	return nil
}

// answerLocal is the records link of the chain: it returns the reply for a
// name the client's networks hold, or nil to pass the query on.
func (c *client) answerLocal(r *dns.Msg) *dns.Msg {
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil
	}
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if q.Qtype == dns.TypePTR {
		ip, ok := parseReverse(q.Name)
		if !ok {
			return nil
		}
		for _, n := range c.scope {
			if target, ok := n.ptr[ip]; ok {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: target})
				return m
			}
		}
		return nil
	}
	ips := c.lookup(normalise(q.Name))
	if len(ips) == 0 {
		return nil
	}
	// Every replica in a fresh order: clients that take the first address
	// spread over the replicas, and clients that try them all still can.
	for _, i := range rand.Perm(len(ips)) {
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
	return m
}

// check rejects what no link should see: answers, other opcodes, and
// messages with other than one question. It returns the reply to send (nil
// for none) and whether the query may go on to the chain.
func check(r *dns.Msg) (*dns.Msg, bool) {
	switch {
	case r.Response:
		return nil, false // never answer answers: that is how reflection loops start
	case r.Opcode != dns.OpcodeQuery:
		return new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented), false
	case len(r.Question) != 1:
		return new(dns.Msg).SetRcodeFormatError(r), false
	}
	return nil, true
}

// truncate cuts m to what a UDP client said it can take.
func truncate(r, m *dns.Msg) {
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	m.Truncate(size)
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
