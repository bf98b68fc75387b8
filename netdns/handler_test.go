package netdns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

func TestMain(m *testing.M) {
	// Ensure signals the pid in dns.pid, which is this test process when
	// Serve runs in a goroutine. A SIGHUP arriving just after a Serve has
	// stopped listening must not kill the whole test binary.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
		}
	}()
	os.Exit(m.Run())
}

// recorder is an in-process dns.ResponseWriter that keeps the reply.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
}

func (r *recorder) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr      { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	err := m.Unpack(b)
	r.msg = m
	return len(b), err
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// stubUpstream is the last link in handler tests: it answers NXDOMAIN and
// counts what reached it.
type stubUpstream struct{ names []string }

func (s *stubUpstream) serveDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) {
	s.names = append(s.names, r.Question[0].Name)
	reply(w, r, new(dns.Msg).SetRcode(r, dns.RcodeNameError))
}

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// twoNetworks: front (web x2, proxy) and back (db, api); api and proxy are
// on both networks with one address on each.
func twoNetworks() Records {
	return Records{Generation: 7, Networks: []Network{
		{Name: "demo_front", Gateway: a("10.1.0.1"), Subnet: netip.MustParsePrefix("10.1.0.0/24"), Endpoints: []Endpoint{
			{ContainerID: "aaaaaaaaaaaa1111", IP: a("10.1.0.2"), Names: []string{"demo-web-1", "aaaaaaaaaaaa"}, Service: "web"},
			{ContainerID: "bbbbbbbbbbbb2222", IP: a("10.1.0.3"), Names: []string{"demo-web-2", "bbbbbbbbbbbb"}, Service: "web"},
			{ContainerID: "cccccccccccc3333", IP: a("10.1.0.4"), Names: []string{"proxy", "demo-proxy-1", "Edge.Alias", "cccccccccccc"}},
			{ContainerID: "dddddddddddd4444", IP: a("10.1.0.5"), Names: []string{"api", "demo-api-1"}},
		}},
		{Name: "demo_back", Gateway: a("10.2.0.1"), Subnet: netip.MustParsePrefix("10.2.0.0/24"), Endpoints: []Endpoint{
			{ContainerID: "eeeeeeeeeeee5555", IP: a("10.2.0.2"), Names: []string{"db", "demo-db-1", "eeeeeeeeeeee"}},
			{ContainerID: "dddddddddddd4444", IP: a("10.2.0.3"), Names: []string{"api", "demo-api-1"}},
			{ContainerID: "cccccccccccc3333", IP: a("10.2.0.4"), Names: []string{"proxy", "demo-proxy-1"}},
		}},
	}}
}

func newChain(r Records) (*mux, *stubUpstream) {
	up := &stubUpstream{}
	rec := &recordsHandler{next: up}
	rec.idx.Store(newIndex(r))
	return &mux{ctx: context.Background(), chain: rec}, up
}

func ask(m dns.Handler, from string, name string, qtype uint16) *dns.Msg {
	req := new(dns.Msg).SetQuestion(name, qtype)
	w := &recorder{remote: &net.UDPAddr{IP: net.ParseIP(from), Port: 40000}}
	m.ServeDNS(w, req)
	return w.msg
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
	m, _ := newChain(twoNetworks())
	tests := []struct {
		name  string
		from  string
		query string
		qtype uint16
		rcode int
		want  []string
	}{
		{name: "service round robin returns all replicas", from: "10.1.0.4", query: "web.", qtype: dns.TypeA, want: []string{"10.1.0.2", "10.1.0.3"}},
		{name: "container name", from: "10.1.0.4", query: "demo-web-2.", qtype: dns.TypeA, want: []string{"10.1.0.3"}},
		{name: "short id", from: "10.1.0.2", query: "cccccccccccc.", qtype: dns.TypeA, want: []string{"10.1.0.4"}},
		{name: "alias case-insensitive", from: "10.1.0.2", query: "eDGE.aLIAS.", qtype: dns.TypeA, want: []string{"10.1.0.4"}},
		{name: "upper-case service", from: "10.1.0.2", query: "WEB.", qtype: dns.TypeA, want: []string{"10.1.0.2", "10.1.0.3"}},
		{name: "front cannot see back", from: "10.1.0.2", query: "db.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "back cannot see front", from: "10.2.0.2", query: "web.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "two networks see both", from: "10.1.0.4", query: "db.", qtype: dns.TypeA, want: []string{"10.2.0.2"}},
		{name: "two networks via other address", from: "10.2.0.4", query: "web.", qtype: dns.TypeA, want: []string{"10.1.0.2", "10.1.0.3"}},
		{name: "own network wins front", from: "10.1.0.4", query: "api.", qtype: dns.TypeA, want: []string{"10.1.0.5"}},
		{name: "own network wins back", from: "10.2.0.2", query: "api.", qtype: dns.TypeA, want: []string{"10.2.0.3"}},
		{name: "aaaa of known name is empty noerror", from: "10.1.0.2", query: "web.", qtype: dns.TypeAAAA},
		{name: "mx of known name is empty noerror", from: "10.1.0.2", query: "web.", qtype: dns.TypeMX},
		{name: "unknown name forwarded", from: "10.1.0.2", query: "example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "unknown client forwarded", from: "10.9.0.9", query: "web.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "gateway itself is not a client", from: "10.1.0.1", query: "web.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "reverse lookup in scope", from: "10.1.0.2", query: "4.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, want: []string{"proxy."}},
		{name: "reverse lookup out of scope", from: "10.1.0.2", query: "2.0.2.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ask(m, tc.from, tc.query, tc.qtype)
			if got == nil {
				t.Fatal("no reply")
			}
			if got.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tc.rcode])
			}
			if addrs := answerAddrs(got); !slices.Equal(addrs, tc.want) {
				t.Fatalf("answer %v, want %v", addrs, tc.want)
			}
			if tc.rcode == dns.RcodeSuccess && !got.Authoritative {
				t.Error("local answer not authoritative")
			}
		})
	}
}

func TestBareNameAndQueryNameKept(t *testing.T) {
	t.Parallel()
	// A query name always arrives fully qualified on the wire; records may
	// be written either way.
	r := twoNetworks()
	r.Networks[0].Endpoints[0].Names = append(r.Networks[0].Endpoints[0].Names, "dotted.")
	m, _ := newChain(r)
	for _, q := range []string{"dotted.", "DOTTED."} {
		got := ask(m, "10.1.0.3", q, dns.TypeA)
		if addrs := answerAddrs(got); !slices.Equal(addrs, []string{"10.1.0.2"}) {
			t.Fatalf("%s: %v", q, addrs)
		}
		if got.Answer[0].Header().Name != q {
			t.Fatalf("answer name %q, want the query's %q", got.Answer[0].Header().Name, q)
		}
	}
}

func TestRoundRobinShuffles(t *testing.T) {
	t.Parallel()
	r := Records{Networks: []Network{{Name: "n", Gateway: a("10.3.0.1")}}}
	for i := 2; i < 10; i++ {
		r.Networks[0].Endpoints = append(r.Networks[0].Endpoints, Endpoint{
			ContainerID: string(rune('a' + i)), IP: netip.AddrFrom4([4]byte{10, 3, 0, byte(i)}), Service: "worker",
		})
	}
	m, _ := newChain(r)
	firsts := map[string]bool{}
	for range 200 {
		got := ask(m, "10.3.0.2", "worker.", dns.TypeA)
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
	m, up := newChain(twoNetworks())
	w := &recorder{remote: &net.UDPAddr{IP: net.ParseIP("10.1.0.2"), Port: 1}}

	two := new(dns.Msg).SetQuestion("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	m.ServeDNS(w, two)
	if w.msg == nil || w.msg.Rcode != dns.RcodeFormatError {
		t.Fatalf("two questions: %v", w.msg)
	}

	w.msg = nil
	none := new(dns.Msg)
	m.ServeDNS(w, none)
	if w.msg == nil || w.msg.Rcode != dns.RcodeFormatError {
		t.Fatalf("no question: %v", w.msg)
	}

	w.msg = nil
	upd := new(dns.Msg).SetUpdate("web.")
	m.ServeDNS(w, upd)
	if w.msg == nil || w.msg.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("update: %v", w.msg)
	}

	w.msg = nil
	resp := new(dns.Msg).SetQuestion("web.", dns.TypeA)
	resp.Response = true
	m.ServeDNS(w, resp)
	if w.msg != nil {
		t.Fatalf("answered a response: %v", w.msg)
	}
	if len(up.names) != 0 {
		t.Fatalf("malformed queries were forwarded: %v", up.names)
	}
}

func TestLargeAnswerTruncatedOverUDP(t *testing.T) {
	t.Parallel()
	r := Records{Networks: []Network{{Name: "n", Gateway: a("10.4.0.1")}}}
	for i := 2; i < 102; i++ {
		r.Networks[0].Endpoints = append(r.Networks[0].Endpoints, Endpoint{
			ContainerID: string(rune(0x100 + i)), IP: netip.AddrFrom4([4]byte{10, 4, 0, byte(i)}), Service: "many",
		})
	}
	m, _ := newChain(r)
	got := ask(m, "10.4.0.2", "many.", dns.TypeA)
	if !got.Truncated {
		t.Fatal("100 addresses over plain UDP must set TC")
	}
	if l := got.Len(); l > dns.MinMsgSize {
		t.Fatalf("reply is %d bytes, over %d", l, dns.MinMsgSize)
	}
	w := &recorder{remote: &net.TCPAddr{IP: net.ParseIP("10.4.0.2"), Port: 1}}
	m.ServeDNS(w, new(dns.Msg).SetQuestion("many.", dns.TypeA))
	if w.msg.Truncated || len(w.msg.Answer) != 100 {
		t.Fatalf("tcp: truncated %v with %d answers", w.msg.Truncated, len(w.msg.Answer))
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

	rec := &recordsHandler{next: &forwarder{}} // no upstream: SERVFAIL, no network
	rec.idx.Store(newIndex(twoNetworks()))
	m := &mux{ctx: context.Background(), chain: rec}
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return // the server drops what does not parse before any handler
		}
		var remote net.Addr = &net.UDPAddr{IP: net.ParseIP("10.1.0.4"), Port: 1}
		if tcp {
			remote = &net.TCPAddr{IP: net.ParseIP("10.1.0.4"), Port: 1}
		}
		w := &recorder{remote: remote}
		m.ServeDNS(w, req)
		if w.msg != nil {
			if _, err := w.msg.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
		}
	})
}
