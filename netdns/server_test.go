package netdns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/lockfile"
)

// Every test gets its own 127.X.Y.0/24: all of 127/8 is local on Linux, so
// 127.X.Y.1 plays a gateway and 127.X.Y.2 a container, and tests in this
// and other packages never share an address.
var (
	loopbackX = byte(64 + rand.IntN(180))
	loopbackY atomic.Uint32
	testPort  = 20000 + rand.IntN(30000)
)

type lo func(n byte) netip.Addr

func loopbackNet(t *testing.T) lo {
	t.Helper()
	y := byte(loopbackY.Add(1))
	return func(n byte) netip.Addr { return netip.AddrFrom4([4]byte{127, loopbackX, y, n}) }
}

// fakeUpstream is a resolver on 127.0.0.1 that knows one name and counts
// the queries it gets.
func fakeUpstream(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n.Add(1)
		m := new(dns.Msg).SetReply(r)
		if normalise(r.Question[0].Name) == "upstream.test" && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: header(r.Question[0].Name, dns.TypeA), A: net.IPv4(192, 0, 2, 10)})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		udp := &dns.Server{PacketConn: pc, Handler: h}
		tcp := &dns.Server{Listener: ln, Handler: h}
		if err := start(udp); err != nil {
			t.Fatal(err)
		}
		if err := start(tcp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(udp); shutdown(tcp) })
		return pc.LocalAddr().String(), &n
	}
	t.Fatal("no port free on udp and tcp")
	return "", nil
}

// deadUpstream returns an address where nothing listens.
func deadUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

type served struct {
	done chan error
	stop context.CancelFunc
}

func startServe(t *testing.T, cfg Config) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &served{done: make(chan error, 1), stop: cancel}
	go func() { s.done <- Serve(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

func waitLoaded(t *testing.T, dir string, gen uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for loadedGeneration(dir) < gen {
		if time.Now().After(deadline) {
			t.Fatalf("generation %d not loaded (loaded %d)", gen, loadedGeneration(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func query(from netip.Addr, server netip.Addr, network, name string, qtype uint16) (*dns.Msg, error) {
	var local net.Addr = &net.UDPAddr{IP: from.AsSlice()}
	if network == "tcp" {
		local = &net.TCPAddr{IP: from.AsSlice()}
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 3 * time.Second}}
	m, _, err := c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype), netip.AddrPortFrom(server, uint16(testPort)).String())
	return m, err
}

// bindable reports whether addr:testPort is free, i.e. no server listens.
func bindable(addr netip.Addr) bool {
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, uint16(testPort)).String())
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// testRecords: network "a" (gateway .1) with web on .2 and .3, network "b"
// (gateway .101) with db on .102, and a client container on both (.4 on a,
// .104 on b).
func testRecords(ip lo) Records {
	return Records{Networks: []Network{
		{Name: "a", Gateway: ip(1), Endpoints: []Endpoint{
			{ContainerID: "web1", IP: ip(2), Names: []string{"p-web-1"}, Service: "web"},
			{ContainerID: "web2", IP: ip(3), Names: []string{"p-web-2"}, Service: "web"},
			{ContainerID: "both", IP: ip(4), Names: []string{"client"}},
		}},
		{Name: "b", Gateway: ip(101), Endpoints: []Endpoint{
			{ContainerID: "db", IP: ip(102), Names: []string{"db", "p-db-1"}},
			{ContainerID: "both", IP: ip(104), Names: []string{"client"}},
		}},
	}}
}

func TestServeAnswersAndForwards(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	up, upCount := fakeUpstream(t)
	dir := t.TempDir()
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{up}})
	waitLoaded(t, dir, 1)

	tests := []struct {
		name      string
		from, gw  byte
		query     string
		rcode     int
		want      []string
		forwarded bool
	}{
		{name: "service on own network", from: 2, gw: 1, query: "web", want: []string{"2", "3"}},
		{name: "container name", from: 102, gw: 101, query: "P-DB-1", want: []string{"102"}},
		{name: "other network hidden", from: 2, gw: 1, query: "db", rcode: dns.RcodeNameError, forwarded: true},
		{name: "client on both networks sees a", from: 4, gw: 1, query: "web", want: []string{"2", "3"}},
		{name: "client on both networks sees b", from: 4, gw: 1, query: "db", want: []string{"102"}},
		{name: "client asks other gateway", from: 104, gw: 101, query: "web", want: []string{"2", "3"}},
		{name: "unknown name forwarded", from: 2, gw: 1, query: "upstream.test", forwarded: true, want: []string{"192.0.2.10"}},
		{name: "unknown client forwarded", from: 200, gw: 1, query: "web", rcode: dns.RcodeNameError, forwarded: true},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				before := upCount.Load()
				m, err := query(ip(tc.from), ip(tc.gw), network, tc.query, dns.TypeA)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
				}
				var want []string
				for _, w := range tc.want {
					if n, err := strconv.Atoi(w); err == nil {
						w = ip(byte(n)).String()
					}
					want = append(want, w)
				}
				slices.Sort(want)
				if got := answerAddrs(m); !slices.Equal(got, want) {
					t.Fatalf("answer %v, want %v", got, want)
				}
				if forwarded := upCount.Load() > before; forwarded != tc.forwarded {
					t.Fatalf("forwarded %v, want %v", forwarded, tc.forwarded)
				}
			})
		}
	}
}

func TestServeServfailWhenUpstreamDown(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{deadUpstream(t), deadUpstream(t)}})
	waitLoaded(t, dir, 1)
	for _, from := range []byte{2, 200} {
		m, err := query(ip(from), ip(1), "udp", "upstream.test", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("from .%d: rcode %s, want SERVFAIL", from, dns.RcodeToString[m.Rcode])
		}
	}
	// Local names still answer while upstreams are down.
	m, err := query(ip(2), ip(1), "udp", "web", dns.TypeA)
	if err != nil || len(m.Answer) != 2 {
		t.Fatalf("local name with upstream down: %v %v", m, err)
	}
}

func TestServeReload(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	up, _ := fakeUpstream(t)
	dir := t.TempDir()
	full := testRecords(ip)
	onlyA := Records{Networks: full.Networks[:1]}
	if err := WriteRecords(t.Context(), dir, onlyA); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{up}})
	waitLoaded(t, dir, 1)
	if bindable(ip(1)) || !bindable(ip(101)) {
		t.Fatal("after first load: want a listener on .1 only")
	}

	// Network b appears: a listener is added, by polling alone (no signal).
	if err := WriteRecords(t.Context(), dir, full); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, dir, 2)
	if bindable(ip(101)) {
		t.Fatal("no listener for the new network")
	}
	if m, err := query(ip(102), ip(101), "udp", "db", dns.TypeA); err != nil || len(m.Answer) != 1 {
		t.Fatalf("query on new network: %v %v", m, err)
	}

	// Network a goes away: its listener is closed, and its names vanish.
	if err := WriteRecords(t.Context(), dir, Records{Networks: full.Networks[1:]}); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, dir, 3)
	if !bindable(ip(1)) {
		t.Fatal("listener of removed network still bound")
	}
	m, err := query(ip(104), ip(101), "udp", "web", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("names of a removed network still answered: %v", m)
	}
}

func TestServeExitsWithoutNetworks(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{deadUpstream(t)}, Grace: 200 * time.Millisecond})
	waitLoaded(t, dir, 1)
	if pid, ok := livePID(dir); !ok || pid != os.Getpid() {
		t.Fatalf("pid file: %d %v", pid, ok)
	}
	// Still running past the grace while networks exist.
	select {
	case err := <-s.done:
		t.Fatalf("Serve returned with networks left: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	if err := WriteRecords(t.Context(), dir, Records{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not exit after the networks were gone")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("exited after %v, before the grace period", d)
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left behind: %v", err)
	}
	if !bindable(ip(1)) || !bindable(ip(101)) {
		t.Fatal("listeners left bound after exit")
	}
}

func TestServeOnePerDirectory(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{deadUpstream(t)}})
	waitLoaded(t, dir, 1)
	if err := Serve(t.Context(), Config{Dir: dir, Port: testPort, lockPatience: 100 * time.Millisecond}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second server: %v, want AlreadyExists", err)
	}
}

// spawner starts Serve in a goroutine of the test, as "berth dns" would run
// in its own process, and counts the starts.
type spawner struct {
	t     *testing.T
	cfg   Config
	n     atomic.Int32
	wg    sync.WaitGroup
	ctx   context.Context
	mu    sync.Mutex
	errs  []error
	delay time.Duration
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

func (s *spawner) spawn() error {
	s.n.Add(1)
	s.wg.Go(func() {
		time.Sleep(s.delay)
		if err := Serve(s.ctx, s.cfg); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	})
	return nil
}

func TestEnsure(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	up, _ := fakeUpstream(t)
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Port: testPort, Upstreams: []string{up}, Grace: 100 * time.Millisecond})
	sp.delay = 50 * time.Millisecond // a real process takes a moment to start
	full := testRecords(ip)
	ctx := t.Context()

	if err := Ensure(ctx, dir, Records{Networks: full.Networks[:1]}, sp.spawn); err != nil {
		t.Fatal(err)
	}
	if sp.n.Load() != 1 {
		t.Fatalf("%d spawns, want 1", sp.n.Load())
	}
	// Ensure returns only once the listener answers.
	if m, err := query(ip(2), ip(1), "udp", "p-web-2", dns.TypeA); err != nil || len(m.Answer) != 1 {
		t.Fatalf("right after Ensure: %v %v", m, err)
	}

	if err := Ensure(ctx, dir, full, sp.spawn); err != nil {
		t.Fatal(err)
	}
	if sp.n.Load() != 1 {
		t.Fatalf("live server was spawned again: %d spawns", sp.n.Load())
	}
	if m, err := query(ip(102), ip(101), "tcp", "db", dns.TypeA); err != nil || len(m.Answer) != 1 {
		t.Fatalf("second network right after Ensure: %v %v", m, err)
	}

	// No networks: Ensure only writes, and the server goes away.
	if err := Ensure(ctx, dir, Records{}, sp.spawn); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !bindable(ip(1)) || !bindable(ip(101)) || fileExists(filepath.Join(dir, pidFile)) {
		if time.Now().After(deadline) {
			t.Fatal("server still running after the last network went")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A network again: a new server is started.
	if err := Ensure(ctx, dir, full, sp.spawn); err != nil {
		t.Fatal(err)
	}
	if sp.n.Load() != 2 {
		t.Fatalf("%d spawns, want 2", sp.n.Load())
	}
	if m, err := query(ip(4), ip(1), "udp", "db", dns.TypeA); err != nil || len(m.Answer) != 1 {
		t.Fatalf("after restart: %v %v", m, err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestEnsureStalePidFile(t *testing.T) {
	t.Parallel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	foreign := exec.Command("sleep", "30")
	if err := foreign.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	t.Cleanup(func() { foreign.Process.Kill(); foreign.Wait() })

	for _, tc := range []struct {
		name string
		pid  int
	}{
		{"dead process", dead.Process.Pid},
		{"someone else's process", foreign.Process.Pid},
		{"garbage", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := loopbackNet(t)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(fmt.Sprintf("%d\n", tc.pid)), 0o644); err != nil {
				t.Fatal(err)
			}
			sp := newSpawner(t, Config{Dir: dir, Port: testPort, Upstreams: []string{deadUpstream(t)}})
			if err := Ensure(t.Context(), dir, testRecords(ip), sp.spawn); err != nil {
				t.Fatal(err)
			}
			if sp.n.Load() != 1 {
				t.Fatalf("%d spawns, want 1", sp.n.Load())
			}
		})
	}
}

func TestEnsureGivesUp(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	var spawns atomic.Int32
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := Ensure(ctx, dir, testRecords(ip), func() error { spawns.Add(1); return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
	if spawns.Load() != 1 {
		t.Fatalf("%d spawns, want exactly 1", spawns.Load())
	}

	boom := errors.New("boom")
	if err := Ensure(t.Context(), t.TempDir(), testRecords(ip), func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("spawn failure: %v", err)
	}
}

func TestWriteReadRecords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "dns")
	r, err := ReadRecords(dir)
	if err != nil || r.Generation != 0 || len(r.Networks) != 0 {
		t.Fatalf("missing file: %+v %v", r, err)
	}
	ip := loopbackNet(t)
	want := testRecords(ip)
	want.Generation = 99 // ignored: WriteRecords numbers generations
	if err := WriteRecords(ctx, dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || len(got.Networks) != 2 || got.Networks[1].Endpoints[0].IP != ip(102) ||
		got.Networks[0].Endpoints[0].Service != "web" || got.Networks[0].Gateway != ip(1) {
		t.Fatalf("round trip: %+v", got)
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := WriteRecords(ctx, dir, Records{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := ReadRecords(dir); got.Generation != 11 {
		t.Fatalf("after 10 concurrent writes: generation %d, want 11", got.Generation)
	}

	// A lost records file must not restart generations below what a server
	// already reported, or Ensure would return before the server loads.
	os.WriteFile(filepath.Join(dir, loadedFile), []byte("40\n"), 0o644)
	os.Remove(filepath.Join(dir, recordsFile))
	if err := WriteRecords(ctx, dir, Records{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadRecords(dir); got.Generation != 41 {
		t.Fatalf("after loss: generation %d, want 41", got.Generation)
	}

	os.WriteFile(filepath.Join(dir, recordsFile), []byte("{not json"), 0o644)
	if _, err := ReadRecords(dir); err == nil {
		t.Fatal("corrupt records read without error")
	}
}

func TestEnsureNeverSignalsForeignProcess(t *testing.T) {
	t.Parallel()
	foreign := exec.Command("sleep", "30")
	if err := foreign.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- foreign.Wait() }()
	t.Cleanup(func() { foreign.Process.Kill(); <-exited })

	ip := loopbackNet(t)
	dir := t.TempDir()
	// Something holds the server lock (a server starting up, say) while
	// the pid file names an unrelated process.
	l, err := lockfile.Acquire(t.Context(), filepath.Join(dir, serveLock))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(foreign.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	var spawns atomic.Int32
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	if err := Ensure(ctx, dir, testRecords(ip), func() error { spawns.Add(1); return nil }); err == nil {
		t.Fatal("Ensure succeeded without a server")
	}
	if spawns.Load() != 0 {
		t.Fatalf("spawned %d times while a server held the lock", spawns.Load())
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("foreign process was signalled: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}
