package netdns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/netnstest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables in them")
	}
}

// newSandbox makes a network namespace with loopback up, bind-mounted in a
// temporary directory, as the engine makes a container's.
func newSandbox(t *testing.T) string {
	t.Helper()
	needRoot(t)
	return netnstest.New(t, filepath.Join(t.TempDir(), "netns"))
}

// ask queries 127.0.0.11:53 from inside the sandbox, as a container's
// resolver does.
func ask(t *testing.T, sandbox, network, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	t.Helper()
	var m *dns.Msg
	err := netnstest.Run(sandbox, func() (err error) {
		c := &dns.Client{Net: network, Timeout: timeout}
		m, _, err = c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype), "127.0.0.11:53")
		return err
	})
	return m, err
}

// spawner runs Serve in this process where the engine would start "berth
// dns", and counts the starts.
type spawner struct {
	t    *testing.T
	cfg  Config
	n    atomic.Int32
	wg   sync.WaitGroup
	ctx  context.Context
	mu   sync.Mutex
	errs []error
	// running are the servers started so far: kill stops them.
	running []runningServer
}

type runningServer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newSpawner(t *testing.T, cfg Config) *spawner {
	ctx, cancel := context.WithCancel(context.Background())
	s := &spawner{t: t, cfg: cfg, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		s.wg.Wait()
		for _, err := range s.errs {
			t.Errorf("spawned server: %v", err)
		}
	})
	return s
}

func (s *spawner) spawn(ready *os.File) error {
	s.n.Add(1)
	// The caller closes its copy of the pipe's write end when spawn
	// returns, as after starting a process; the server keeps its own.
	w, err := dupFile(ready)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.mu.Lock()
	s.running = append(s.running, runningServer{cancel, done})
	s.mu.Unlock()
	cfg := s.cfg
	cfg.Ready = w
	s.wg.Go(func() {
		defer close(done)
		if err := Serve(ctx, cfg); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	})
	return nil
}

// kill stops every server started so far and waits until they are gone,
// as when the process dies.
func (s *spawner) kill() {
	s.mu.Lock()
	running := s.running
	s.running = nil
	s.mu.Unlock()
	for _, r := range running {
		r.cancel()
		<-r.done
	}
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func sandboxRecords(sbA, sbB string) Records {
	return Records{
		Networks: []Network{
			{Name: "p_front", Endpoints: []Endpoint{
				{ContainerID: "a", IPs: []netip.Addr{a("10.1.0.2")}, Names: []string{"p-web-1", "web"}, PTR: "p-web-1.p_front"},
				{ContainerID: "b", IPs: []netip.Addr{a("10.1.0.3"), a("fd00:1::3")}, Names: []string{"p-api-1", "api"}, PTR: "p-api-1.p_front"},
			}},
			{Name: "p_back", Internal: true, Endpoints: []Endpoint{
				{ContainerID: "b", IPs: []netip.Addr{a("10.2.0.3")}, Names: []string{"p-api-1", "api"}},
				{ContainerID: "c", IPs: []netip.Addr{a("10.2.0.4")}, Names: []string{"p-db-1", "db"}},
			}},
		},
		Sandboxes: []Sandbox{
			{Netns: sbA, ContainerID: "a", Networks: []string{"p_front"}, Links: map[string]string{"backend": "api"}},
			{Netns: sbB, ContainerID: "b", Networks: []string{"p_front", "p_back"}},
		},
	}
}

func TestServeAnswersInsideSandboxes(t *testing.T) {
	t.Parallel()
	sbA, sbB := newSandbox(t), newSandbox(t)
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: time.Hour})
	ctx := t.Context()
	if err := Ensure(ctx, dir, sandboxRecords(sbA, sbB), sp.spawn); err != nil {
		t.Fatal(err)
	}
	if sp.n.Load() != 1 {
		t.Fatalf("%d spawns, want 1", sp.n.Load())
	}
	cases := []struct {
		sandbox, net, name string
		qtype              uint16
		rcode              int
		n                  int
	}{
		{sbA, "udp", "web", dns.TypeA, dns.RcodeSuccess, 1},
		{sbA, "tcp", "api", dns.TypeA, dns.RcodeSuccess, 1},
		{sbA, "udp", "api", dns.TypeAAAA, dns.RcodeSuccess, 1},
		{sbA, "udp", "backend", dns.TypeA, dns.RcodeSuccess, 1},  // a link of a
		{sbA, "udp", "db", dns.TypeA, dns.RcodeServerFailure, 0}, // not a's network
		{sbA, "udp", "outside.test", dns.TypeA, dns.RcodeServerFailure, 0},
		{sbB, "udp", "db", dns.TypeA, dns.RcodeSuccess, 1},            // b is on both
		{sbB, "udp", "backend", dns.TypeA, dns.RcodeServerFailure, 0}, // a's link only
		{sbB, "udp", "web.p_front", dns.TypeA, dns.RcodeSuccess, 1},
		{sbA, "udp", "2.0.1.10.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, 1},
	}
	for _, c := range cases {
		m, err := ask(t, c.sandbox, c.net, c.name, c.qtype, 3*time.Second)
		if err != nil {
			t.Errorf("%s %s from %s: %v", c.net, c.name, filepath.Base(filepath.Dir(c.sandbox)), err)
			continue
		}
		if m.Rcode != c.rcode || len(m.Answer) != c.n {
			t.Errorf("%s %s: rcode %s, %d answers (%v); want %s, %d", c.net, c.name, dns.RcodeToString[m.Rcode], len(m.Answer), m.Answer, dns.RcodeToString[c.rcode], c.n)
		}
	}
	if m, err := ask(t, sbA, "udp", "2.0.1.10.in-addr.arpa", dns.TypePTR, 3*time.Second); err == nil && len(m.Answer) == 1 {
		if ptr := m.Answer[0].(*dns.PTR).Ptr; ptr != "p-web-1.p_front." {
			t.Errorf("PTR = %q, want p-web-1.p_front.", ptr)
		}
	}

	// UDP queries and answers pass untracked: no conntrack entry towards
	// the server (TCP's DNAT makes one per connection).
	if n := trackedUDP(t, sbA); n != 0 {
		t.Errorf("%d conntrack entries of UDP to %s in the sandbox, want none", n, ServerAddr)
	}

	// A container may run its own DNS server on 0.0.0.0:53: the resolver's
	// socket is elsewhere, and 127.0.0.11:53 still reaches the resolver.
	var pc net.PacketConn
	if err := netnstest.Run(sbA, func() (err error) {
		pc, err = net.ListenPacket("udp4", "0.0.0.0:53")
		return err
	}); err != nil {
		t.Fatalf("port 53 taken in the sandbox: %v", err)
	}
	defer pc.Close()
	if m, err := ask(t, sbA, "udp", "web", dns.TypeA, 3*time.Second); err != nil || len(m.Answer) != 1 {
		t.Errorf("with the container's own server on 0.0.0.0:53: %v %v", m, err)
	}
}

// trackedUDP counts the sandbox's conntrack entries of UDP to ServerAddr.
func trackedUDP(t *testing.T, sandbox string) int {
	t.Helper()
	n := 0
	err := netnstest.Run(sandbox, func() error {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		for _, f := range flows {
			if f.Forward.Protocol == unix.IPPROTO_UDP && f.Forward.DstIP.Equal(ServerAddr.AsSlice()) {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A server that dies comes back at the next Ensure or from a watcher, with
// the same port in each sandbox, so a client's retry on the same flow
// reaches it; during the gap queries are not refused, only unanswered.
func TestServerRestartKeepsClientsWorking(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: time.Hour})
	ctx := t.Context()
	recs := Records{
		Networks:  []Network{{Name: "n", Endpoints: []Endpoint{{ContainerID: "x", IPs: []netip.Addr{a("10.9.0.2")}, Names: []string{"x"}}}}},
		Sandboxes: []Sandbox{{Netns: sb, ContainerID: "x", Networks: []string{"n"}}},
	}
	if err := Ensure(ctx, dir, recs, sp.spawn); err != nil {
		t.Fatal(err)
	}
	before := readPorts(t, dir)

	// One client socket, as a resolver keeps for its retries.
	var conn net.Conn
	if err := netnstest.Run(sb, func() (err error) {
		conn, err = net.Dial("udp4", "127.0.0.11:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &dns.Conn{Conn: conn}
	query := func(wait time.Duration) (*dns.Msg, error) {
		if err := c.WriteMsg(new(dns.Msg).SetQuestion("x.", dns.TypeA)); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		return c.ReadMsg()
	}
	if m, err := query(time.Second); err != nil || len(m.Answer) != 1 {
		t.Fatalf("before the kill: %v %v", m, err)
	}

	// No server: the query is not refused (which would fail the name at
	// once), only unanswered, so the resolver waits and retries.
	sp.kill()
	_, err := query(300 * time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("query with no server: %v, want a timeout", err)
	}
	// A new server takes the same port: the retry, on the same flow, gets
	// its answer.
	if err := Ensure(ctx, dir, recs, sp.spawn); err != nil {
		t.Fatal(err)
	}
	if m, err := query(time.Second); err != nil || len(m.Answer) != 1 {
		t.Fatalf("retry after the restart: %v %v", m, err)
	}

	// A watcher brings a killed server back by itself.
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		Watch(wctx, dir, sp.spawn, func(err error) { t.Errorf("watch: %v", err) })
	}()
	defer func() { stopWatch(); <-watched }()
	waitFor(t, func() bool { st, err := ServerStatus(ctx, dir); return err == nil && st.Pid > 0 })
	sp.kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := query(time.Second)
		if err == nil && len(m.Answer) == 1 {
			break
		}
		if ne, ok := err.(net.Error); err != nil && !(ok && ne.Timeout()) {
			t.Fatalf("query refused while the server was down: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer 5 s after the kill: %v", err)
		}
	}
	if sp.n.Load() != 3 {
		t.Errorf("%d spawns, want 3", sp.n.Load())
	}
	if after := readPorts(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("ports changed across the restart: %v -> %v", before, after)
	}
}

func readPorts(t *testing.T, dir string) map[string]uint16 {
	t.Helper()
	s := &server{cfg: Config{Dir: dir}}
	return s.readPorts()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedirectMustNotWaitForItsSocketsClose: the sandbox's rules are in
// when redirect returns, and its netlink socket is still open, handed to
// closeAside: closing it in line made each new sandbox of a reload wait an
// RCU grace period, and the reload opens an up's sandboxes one after
// another.
func TestRedirectMustNotWaitForItsSocketsClose(t *testing.T) {
	sb := newSandbox(t)
	ns, err := netns.GetFromPath(sb)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	held := make(chan *nftables.Conn, 1)
	orig := closeAside
	closeAside = func(c *nftables.Conn) { held <- c }
	defer func() { closeAside = orig }()
	if err := redirect(ns, 5353); err != nil {
		t.Fatal(err)
	}
	var c *nftables.Conn
	select {
	case c = <-held:
	default:
		t.Fatal("redirect closed its netlink socket itself, in line")
	}
	defer c.CloseLasting()
	look, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := look.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, tb := range tables {
		found = found || tb.Name == dnsTable
	}
	if !found {
		t.Errorf("table %s is not in the sandbox while redirect's socket is still open", dnsTable)
	}
}
