package netdns

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/unixsock"
)

var discard = slog.New(slog.DiscardHandler)

func oneNetwork(sandbox string) Records {
	r := Records{Networks: []Network{{Name: "n", Endpoints: []Endpoint{{ContainerID: "x", IPs: []netip.Addr{a("10.9.0.2")}, Names: []string{"x"}}}}}}
	if sandbox != "" {
		r.Sandboxes = []Sandbox{{Netns: sandbox, ContainerID: "x", Networks: []string{"n"}}}
	}
	return r
}

// Ensure starts one server, however many callers race, and reloads it
// afterwards; Stop ends it once no network is left and returns when it is
// gone; Update never starts one.
func TestEnsureReloadStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: time.Hour})
	ctx := t.Context()

	if err := Update(ctx, dir, oneNetwork("")); err != nil {
		t.Fatalf("update with no server: %v", err)
	}
	if sp.n.Load() != 0 {
		t.Fatal("Update started a server")
	}
	if _, err := ServerStatus(ctx, dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("status with no server: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- Ensure(ctx, dir, oneNetwork(""), sp.spawn) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if sp.n.Load() != 1 {
		t.Fatalf("%d spawns for 8 racing Ensures, want 1", sp.n.Load())
	}
	st, err := ServerStatus(ctx, dir)
	if err != nil || st.Pid != os.Getpid() {
		t.Fatalf("status %+v %v", st, err)
	}
	recs, _ := ReadRecords(dir)
	if st.Generation != recs.Generation {
		t.Fatalf("server at generation %d, records at %d", st.Generation, recs.Generation)
	}

	// Stop leaves a server that still has networks alone.
	if err := Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerStatus(ctx, dir); err != nil {
		t.Fatalf("Stop ended a needed server: %v", err)
	}
	if err := Ensure(ctx, dir, Records{}, sp.spawn); err != nil {
		t.Fatal(err)
	}
	if err := Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	// Gone when Stop returns: its lock is free and nothing answers.
	if _, err := ServerStatus(ctx, dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("status after Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, controlSocket)); !os.IsNotExist(err) {
		t.Errorf("control socket left: %v", err)
	}

	// A socket file left by a killed server is not a server.
	l, err := unixsock.Listen(filepath.Join(dir, controlSocket))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := Ensure(ctx, dir, oneNetwork(""), sp.spawn); err != nil {
		t.Fatalf("ensure over a stale socket: %v", err)
	}
	if sp.n.Load() != 2 {
		t.Fatalf("%d spawns, want 2", sp.n.Load())
	}
}

// A server with no network left exits by itself after the grace period.
func TestServeExitsWithoutNetworks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: 50 * time.Millisecond})
	ctx := t.Context()
	if err := Ensure(ctx, dir, oneNetwork(""), sp.spawn); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteRecords(ctx, dir, Records{}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(ctx, dir, request{Op: "reload"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := ServerStatus(ctx, dir); return errors.Is(err, errdefs.ErrNotFound) })
}

// A spawn whose server fails before serving is reported with its reason.
func TestEnsureReportsAFailedStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	failing := func(ready *os.File) error {
		w, err := dupFile(ready)
		if err != nil {
			return err
		}
		go func() {
			w.WriteString("error: cannot bind\n")
			w.Close()
		}()
		return nil
	}
	err := Ensure(t.Context(), dir, oneNetwork(""), failing)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "cannot bind") {
		t.Fatalf("got %v", err)
	}
	silent := func(ready *os.File) error { return nil } // dies at once: the pipe closes
	if err := Ensure(t.Context(), dir, oneNetwork(""), silent); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
}

// A sandbox that cannot be served fails the Ensure that lists it, naming
// it; one whose namespace is gone (its container was torn down after the
// records were written) is no failure.
func TestEnsureReportsABadSandbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp := newSpawner(t, Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: time.Hour})
	notNetns := filepath.Join(dir, "not-a-netns")
	if err := os.WriteFile(notNetns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Ensure(t.Context(), dir, oneNetwork(notNetns), sp.spawn)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "not-a-netns") {
		t.Fatalf("got %v", err)
	}
	if err := Ensure(t.Context(), dir, oneNetwork(filepath.Join(dir, "gone-netns")), sp.spawn); err != nil {
		t.Fatalf("a sandbox whose namespace is gone: %v", err)
	}
}

// A sandbox torn down between the server's stat and its open (a teardown
// racing another container's start) is no failure either: the start that
// published the records must not fail for a namespace that is not its own.
func TestEnsureSkipsASandboxTornDownDuringTheReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	racing := filepath.Join(dir, "racing-netns")
	if err := os.WriteFile(racing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	removed := false
	cfg := Config{Dir: dir, Upstreams: []string{NoUpstreams}, Grace: time.Hour, beforeOpen: func(path string) {
		if path == racing {
			removed = os.Remove(path) == nil
		}
	}}
	sp := newSpawner(t, cfg)
	// The server runs first, so the sandbox is opened by the reload whose
	// reply Ensure checks.
	if err := Ensure(t.Context(), dir, oneNetwork(""), sp.spawn); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(t.Context(), dir, oneNetwork(racing), sp.spawn); err != nil {
		t.Fatalf("a sandbox removed during the reload: %v", err)
	}
	if !removed {
		t.Fatal("the sandbox was never opened: the test did not race anything")
	}
}

// Forwarding: names the records do not hold go to the upstreams, over the
// protocol the client used, and SERVFAIL comes back when none answers.
func TestForwarder(t *testing.T) {
	t.Parallel()
	up, hits := fakeUpstream(t)
	f := &forwarder{log: discard}
	f.setHost([]string{up})
	c := &client{forward: true}
	for _, tcp := range []bool{false, true} {
		m := f.forward(t.Context(), c, new(dns.Msg).SetQuestion("upstream.test.", dns.TypeA), tcp)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("tcp=%v: %v", tcp, m)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("%d upstream hits", hits.Load())
	}
	// A container's own dns: replaces the host's resolvers.
	dead := deadUpstream(t)
	m := f.forward(t.Context(), &client{forward: true, upstreams: []string{dead}}, new(dns.Msg).SetQuestion("upstream.test.", dns.TypeA), false)
	if m.Rcode != dns.RcodeServerFailure || hits.Load() != 2 {
		t.Fatalf("own upstream: rcode %s, hits %d", dns.RcodeToString[m.Rcode], hits.Load())
	}
	// Internal only: nothing leaves.
	m = f.forward(t.Context(), &client{forward: false}, new(dns.Msg).SetQuestion("upstream.test.", dns.TypeA), false)
	if m.Rcode != dns.RcodeServerFailure || hits.Load() != 2 {
		t.Fatalf("internal: rcode %s, hits %d", dns.RcodeToString[m.Rcode], hits.Load())
	}
}

func TestHostUpstreams(t *testing.T) {
	dir := t.TempDir()
	host, resolved := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "resolved.conf")
	oldHost, oldResolved := hostResolvConf, resolvedResolvConf
	hostResolvConf, resolvedResolvConf = host, resolved
	t.Cleanup(func() { hostResolvConf, resolvedResolvConf = oldHost, oldResolved })
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(host, "nameserver 127.0.0.1\nnameserver 192.0.2.1\nnameserver ::1\n")
	if got := hostUpstreams(nil, discard); len(got) != 1 || got[0] != "192.0.2.1:53" {
		t.Errorf("loopback resolvers kept: %v", got)
	}
	write(host, "nameserver 127.0.0.53\n")
	write(resolved, "nameserver 198.51.100.7\n")
	if got := hostUpstreams(nil, discard); len(got) != 1 || got[0] != "198.51.100.7:53" {
		t.Errorf("systemd-resolved's upstreams not used: %v", got)
	}
	if got := hostUpstreams([]string{NoUpstreams}, discard); got != nil {
		t.Errorf("none: %v", got)
	}
	if got := hostUpstreams([]string{"10.0.0.1:5353"}, discard); len(got) != 1 {
		t.Errorf("configured: %v", got)
	}
}

// fakeUpstream is a resolver on 127.0.0.1 that knows one name and counts
// the queries it gets.
func fakeUpstream(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	n := &atomic.Int32{}
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
		return pc.LocalAddr().String(), n
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
