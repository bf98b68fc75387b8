package netdns

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// twoNetworks: front (web x2, proxy, api) and back (db, api, proxy); api and
// proxy are on both networks with one address on each. Each container has
// a sandbox named after it.
func twoNetworks() Records {
	return Records{Generation: 7, Networks: []Network{
		{Name: "demo_front", Endpoints: []Endpoint{
			{ContainerID: "web1", IPs: []netip.Addr{a("10.1.0.2")}, Names: []string{"demo-web-1", "aaaaaaaaaaaa", "web"}},
			{ContainerID: "web2", IPs: []netip.Addr{a("10.1.0.3")}, Names: []string{"demo-web-2", "bbbbbbbbbbbb", "web"}},
			{ContainerID: "proxy", IPs: []netip.Addr{a("10.1.0.4"), a("fd00:1::4")}, Names: []string{"proxy", "demo-proxy-1", "Edge.Alias", "cccccccccccc"}, PTR: "demo-proxy-1.demo_front"},
			{ContainerID: "api", IPs: []netip.Addr{a("10.1.0.5")}, Names: []string{"api", "demo-api-1"}},
		}},
		{Name: "demo_back", Internal: true, Endpoints: []Endpoint{
			{ContainerID: "db", IPs: []netip.Addr{a("10.2.0.2")}, Names: []string{"db", "demo-db-1", "eeeeeeeeeeee"}},
			{ContainerID: "api", IPs: []netip.Addr{a("10.2.0.3")}, Names: []string{"api", "demo-api-1"}},
			{ContainerID: "proxy", IPs: []netip.Addr{a("10.2.0.4")}, Names: []string{"proxy", "demo-proxy-1"}},
		}},
	}, Sandboxes: []Sandbox{
		{Netns: "web1", ContainerID: "web1", Networks: []string{"demo_front"}, Links: map[string]string{"database": "db", "backend": "API"}},
		{Netns: "web2", ContainerID: "web2", Networks: []string{"demo_front"}},
		{Netns: "proxy", ContainerID: "proxy", Networks: []string{"demo_front", "demo_back"}},
		{Netns: "api", ContainerID: "api", Networks: []string{"demo_back", "demo_front"}},
		{Netns: "db", ContainerID: "db", Networks: []string{"demo_back"}, Upstreams: []string{"192.0.2.53:53"}},
	}}
}

// askIndex runs the records link for one query from a sandbox; nil means
// the query would go on to the forwarder.
func askIndex(idx *index, from, name string, qtype uint16) *dns.Msg {
	c := idx.clients[from]
	if c == nil {
		return nil
	}
	return c.answerLocal(new(dns.Msg).SetQuestion(name, qtype))
}

func answerAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	slices.Sort(out)
	return out
}

func TestRecordsScoping(t *testing.T) {
	t.Parallel()
	idx := newIndex(twoNetworks())
	tests := []struct {
		name  string
		from  string
		query string
		qtype uint16
		pass  bool // not a local name: on to the forwarder
		want  []string
	}{
		{name: "service round robin returns all replicas", from: "proxy", query: "web.", qtype: dns.TypeA, want: []string{"10.1.0.2", "10.1.0.3"}},
		{name: "container name", from: "proxy", query: "demo-web-2.", qtype: dns.TypeA, want: []string{"10.1.0.3"}},
		{name: "short id", from: "web1", query: "cccccccccccc.", qtype: dns.TypeA, want: []string{"10.1.0.4"}},
		{name: "alias case-insensitive", from: "web1", query: "eDGE.aLIAS.", qtype: dns.TypeA, want: []string{"10.1.0.4"}},
		{name: "upper-case service", from: "web1", query: "WEB.", qtype: dns.TypeA, want: []string{"10.1.0.2", "10.1.0.3"}},
		{name: "front cannot see back", from: "web1", query: "db.", qtype: dns.TypeA, pass: true},
		{name: "back cannot see front", from: "db", query: "web.", qtype: dns.TypeA, pass: true},
		{name: "two networks see both", from: "proxy", query: "db.", qtype: dns.TypeA, want: []string{"10.2.0.2"}},
		{name: "first network wins front", from: "proxy", query: "api.", qtype: dns.TypeA, want: []string{"10.1.0.5"}},
		{name: "first network wins back", from: "api", query: "proxy.", qtype: dns.TypeA, want: []string{"10.2.0.4"}},
		{name: "name.network picks the network", from: "api", query: "proxy.demo_front.", qtype: dns.TypeA, want: []string{"10.1.0.4"}},
		{name: "aaaa", from: "web1", query: "proxy.", qtype: dns.TypeAAAA, want: []string{"fd00:1::4"}},
		{name: "aaaa of ipv4-only name is empty noerror", from: "proxy", query: "web.", qtype: dns.TypeAAAA},
		{name: "mx of known name is empty noerror", from: "proxy", query: "web.", qtype: dns.TypeMX},
		{name: "link", from: "web1", query: "backend.", qtype: dns.TypeA, want: []string{"10.1.0.5"}},
		{name: "link to a name out of scope", from: "web1", query: "database.", qtype: dns.TypeA, pass: true},
		{name: "links are the linker's only", from: "web2", query: "backend.", qtype: dns.TypeA, pass: true},
		{name: "unknown name passes", from: "web1", query: "example.test.", qtype: dns.TypeA, pass: true},
		{name: "unknown sandbox passes", from: "nobody", query: "web.", qtype: dns.TypeA, pass: true},
		{name: "reverse lookup in scope", from: "web1", query: "4.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, want: []string{"demo-proxy-1.demo_front."}},
		{name: "reverse lookup ipv6", from: "web1", query: "4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR, want: []string{"demo-proxy-1.demo_front."}},
		{name: "reverse lookup out of scope", from: "web1", query: "2.0.2.10.in-addr.arpa.", qtype: dns.TypePTR, pass: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := askIndex(idx, tc.from, tc.query, tc.qtype)
			if tc.pass {
				if got != nil {
					t.Fatalf("answered locally: %v", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no local answer")
			}
			if got.Rcode != dns.RcodeSuccess || !got.Authoritative {
				t.Fatalf("rcode %s, authoritative %v", dns.RcodeToString[got.Rcode], got.Authoritative)
			}
			if addrs := answerAddrs(got); !slices.Equal(addrs, tc.want) {
				t.Fatalf("answer %v, want %v", addrs, tc.want)
			}
			for _, rr := range got.Answer {
				if rr.Header().Ttl != 0 {
					t.Fatalf("ttl %d, want 0: a recreated container must be found at once", rr.Header().Ttl)
				}
			}
		})
	}
	// Forwarding: the internal-only db never forwards; others do, db with
	// its own upstreams.
	if c := idx.clients["db"]; c.forward {
		t.Error("a container only on internal networks forwards")
	}
	if c := idx.clients["proxy"]; !c.forward {
		t.Error("a container on a normal network does not forward")
	}
}

func TestBareNameAndQueryNameKept(t *testing.T) {
	t.Parallel()
	// A query name always arrives fully qualified on the wire; records may
	// be written either way.
	r := twoNetworks()
	r.Networks[0].Endpoints[0].Names = append(r.Networks[0].Endpoints[0].Names, "dotted.")
	idx := newIndex(r)
	for _, q := range []string{"dotted.", "DOTTED."} {
		got := askIndex(idx, "web2", q, dns.TypeA)
		if addrs := answerAddrs(got); !slices.Equal(addrs, []string{"10.1.0.2"}) {
			t.Fatalf("%s: %v", q, addrs)
		}
		if got.Answer[0].Header().Name != q {
			t.Fatalf("answer name %q, want the query's %q", got.Answer[0].Header().Name, q)
		}
	}
}

func manyReplicas(n int) Records {
	r := Records{Networks: []Network{{Name: "n"}}, Sandboxes: []Sandbox{{Netns: "client", ContainerID: "client", Networks: []string{"n"}}}}
	for i := 2; i < n+2; i++ {
		r.Networks[0].Endpoints = append(r.Networks[0].Endpoints, Endpoint{
			ContainerID: "c" + string(rune('a'+i%26)) + string(rune('a'+i/26)), IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 3, 0, byte(i)})}, Names: []string{"worker"},
		})
	}
	r.Networks[0].Endpoints = append(r.Networks[0].Endpoints, Endpoint{ContainerID: "client", IPs: []netip.Addr{a("10.3.1.1")}, Names: []string{"client"}})
	return r
}

func TestRoundRobinShuffles(t *testing.T) {
	t.Parallel()
	idx := newIndex(manyReplicas(8))
	firsts := map[string]bool{}
	for range 200 {
		got := askIndex(idx, "client", "worker.", dns.TypeA)
		if len(got.Answer) != 8 {
			t.Fatalf("%d answers, want 8", len(got.Answer))
		}
		firsts[got.Answer[0].(*dns.A).A.String()] = true
	}
	// With 8 replicas and 200 shuffles, every replica comes first at some
	// point unless the order is fixed.
	if len(firsts) < 4 {
		t.Fatalf("only %d distinct first answers: order is not shuffled", len(firsts))
	}
}

func TestMalformedQueries(t *testing.T) {
	t.Parallel()
	two := new(dns.Msg).SetQuestion("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	if m, ok := check(two); ok || m == nil || m.Rcode != dns.RcodeFormatError {
		t.Fatalf("two questions: %v %v", m, ok)
	}
	if m, ok := check(new(dns.Msg)); ok || m == nil || m.Rcode != dns.RcodeFormatError {
		t.Fatalf("no question: %v %v", m, ok)
	}
	if m, ok := check(new(dns.Msg).SetUpdate("web.")); ok || m == nil || m.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("update: %v %v", m, ok)
	}
	resp := new(dns.Msg).SetQuestion("web.", dns.TypeA)
	resp.Response = true
	if m, ok := check(resp); ok || m != nil {
		t.Fatalf("a response must get no reply: %v %v", m, ok)
	}
	if m, ok := check(new(dns.Msg).SetQuestion("web.", dns.TypeA)); !ok || m != nil {
		t.Fatalf("a good query must pass: %v %v", m, ok)
	}
}

func TestLargeAnswerTruncatedOverUDP(t *testing.T) {
	t.Parallel()
	idx := newIndex(manyReplicas(100))
	req := new(dns.Msg).SetQuestion("worker.", dns.TypeA)
	got := idx.clients["client"].answerLocal(req)
	if len(got.Answer) != 100 {
		t.Fatalf("%d answers before truncation", len(got.Answer))
	}
	truncate(req, got)
	if !got.Truncated {
		t.Fatal("100 addresses over plain UDP must set TC")
	}
	if l := got.Len(); l > dns.MinMsgSize {
		t.Fatalf("reply is %d bytes, over %d", l, dns.MinMsgSize)
	}
}

func TestParseReverse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"4.3.2.1.IN-ADDR.ARPA", "1.2.3.4"},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::1"},
		{"3.2.1.in-addr.arpa.", ""},
		{"256.3.2.1.in-addr.arpa.", ""},
		{"04.3.2.1.in-addr.arpa.", ""},
		{"x.3.2.1.in-addr.arpa.", ""},
		{"10.in-addr.arpa.", ""},
		{"example.com.", ""},
		{"1.0.ip6.arpa.", ""},
	}
	for _, tc := range tests {
		got, ok := parseReverse(tc.in)
		if tc.want == "" {
			if ok {
				t.Errorf("%s: parsed as %v, want rejection", tc.in, got)
			}
			continue
		}
		if !ok || got != a(tc.want) {
			t.Errorf("%s: %v %v, want %s", tc.in, got, ok, tc.want)
		}
	}
}

func FuzzHandler(f *testing.F) {
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("web.", dns.TypeA),
		new(dns.Msg).SetQuestion("4.0.1.10.in-addr.arpa.", dns.TypePTR),
		new(dns.Msg).SetQuestion("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypePTR),
		new(dns.Msg).SetQuestion("Edge.Alias.", dns.TypeANY),
		new(dns.Msg).SetQuestion("proxy.demo_front.", dns.TypeAAAA),
		new(dns.Msg).SetUpdate("web."),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{}, true)
	f.Add([]byte{0, 0, 1, 0, 0, 1}, false)

	idx := newIndex(twoNetworks())
	fwd := &forwarder{log: discard} // no upstream: SERVFAIL, no network
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return // the server drops what does not parse before any link
		}
		for _, from := range []string{"proxy", "db", "nobody"} {
			m, ok := check(req)
			if ok {
				c := idx.clients[from]
				if c != nil {
					m = c.answerLocal(req)
				}
				if m == nil {
					m = fwd.forward(t.Context(), c, req, tcp)
				}
			}
			if m == nil {
				continue
			}
			if !tcp {
				truncate(req, m)
			}
			if _, err := m.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
		}
	})
}
