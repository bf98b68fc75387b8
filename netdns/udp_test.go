package netdns

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPServer runs the UDP loop on a loopback socket (no sandbox needed):
// record names answered, other names forwarded, large answers truncated,
// garbage and responses ignored without stopping the loop, and close ends it.
func TestUDPServer(t *testing.T) {
	t.Parallel()
	up, hits := fakeUpstream(t)
	recs := twoNetworks()
	recs.Networks = append(recs.Networks, manyReplicas(100).Networks...)
	recs.Sandboxes[0].Networks = append(recs.Sandboxes[0].Networks, manyReplicas(100).Sandboxes[0].Networks...)
	s := newServer(context.Background(), Config{}, discard)
	s.idx.Store(newIndex(recs))
	s.fwd.setHost([]string{up})
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := serveUDP(conn, &sandboxHandler{s: s, key: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()

	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		m, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	if got := answerAddrs(ask("web.", dns.TypeA)); len(got) != 2 || got[0] != "10.1.0.2" || got[1] != "10.1.0.3" {
		t.Fatalf("web: %v", got)
	}
	if m := ask("upstream.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || hits.Load() != 1 {
		t.Fatalf("forwarded: %v (upstream hits %d)", m, hits.Load())
	}
	if m := ask("worker.", dns.TypeA); !m.Truncated {
		t.Fatalf("100 replicas over UDP: TC not set (%d answers)", len(m.Answer))
	}

	// Garbage and a response get nothing back; the loop goes on.
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp := new(dns.Msg).SetQuestion("web.", dns.TypeA)
	resp.Response = true
	rb, _ := resp.Pack()
	for _, b := range [][]byte{{0xde, 0xad}, rb} {
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(make([]byte, 512)); err == nil {
			t.Fatalf("reply of %d bytes to %x", n, b)
		}
	}
	if got := answerAddrs(ask("demo-web-2.", dns.TypeA)); len(got) != 1 {
		t.Fatalf("after garbage: %v", got)
	}

	done := make(chan struct{})
	go func() { u.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
}
