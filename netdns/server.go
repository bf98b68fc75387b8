package netdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
)

// Config configures Serve.
type Config struct {
	// Dir holds records.json, dns.pid and loaded ($BERTH_RUN/dns).
	Dir string
	// Upstreams are "ip:port" resolvers for names the records do not
	// hold; empty means the nameservers of the host's /etc/resolv.conf.
	Upstreams []string
	// Port is the port listened on at every gateway; zero means 53.
	Port int
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Grace is how long the server keeps running once no network is left;
	// zero means two seconds.
	Grace time.Duration

	lockPatience time.Duration // tests shorten the wait for a previous server
}

const (
	pollInterval = 250 * time.Millisecond
	defaultGrace = 2 * time.Second
	// startGrace covers a server started before any records exist.
	startGrace = 5 * time.Second
	// bindPatience is how long one load keeps retrying a bind: the bridge
	// address may have been assigned a moment ago. Loads retry on the next
	// poll after that, so the limit only keeps the loop responsive.
	bindPatience = time.Second
	// defaultLockPatience is how long a new server waits for a previous
	// one in the same directory to finish exiting.
	defaultLockPatience = 5 * time.Second
)

var hostResolvConf = "/etc/resolv.conf"

// Serve runs the DNS server for every network in cfg.Dir/records.json until
// ctx is done or no network has been left for the grace period. It reloads
// the records on SIGHUP and whenever the file changes, and after each load
// writes cfg.Dir/loaded with the generation whose listeners are all bound.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Dir == "" {
		return fmt.Errorf("dns server: directory is empty: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Port == 0 {
		cfg.Port = 53
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return fmt.Errorf("dns server: port %d: %w", cfg.Port, errdefs.ErrInvalidArgument)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = defaultGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("dns server: %w", err)
	}

	// One server per directory; a server still shutting down releases the
	// lock when it is gone, so a fresh one waits for it briefly.
	if cfg.lockPatience <= 0 {
		cfg.lockPatience = defaultLockPatience
	}
	lctx, cancel := context.WithTimeout(ctx, cfg.lockPatience)
	lock, err := lockfile.Acquire(lctx, filepath.Join(cfg.Dir, serveLock))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("dns server in %s is already running: %w", cfg.Dir, errdefs.ErrAlreadyExists)
	}
	defer lock.Unlock()

	// Signals are caught before the pid file exists, so a SIGHUP sent by
	// anyone who read it cannot kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	pidPath := filepath.Join(cfg.Dir, pidFile)
	if err := atomicfile.Write(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	defer os.Remove(pidPath)

	s := newServer(ctx, cfg, log)
	defer s.closeAll()

	start := time.Now()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var (
		seen       stamp
		fileSeen   bool // a records file has been loaded at least once
		dirty      = true
		emptySince time.Time
	)
	for {
		if st := statRecords(cfg.Dir); dirty || st != seen {
			seen = st
			r, err := ReadRecords(cfg.Dir)
			if err != nil {
				log.Error("read records", "err", err)
			} else {
				fileSeen = fileSeen || st.exists
				dirty = !s.apply(ctx, r)
			}
		}
		if s.networks > 0 {
			emptySince = time.Time{}
		} else if fileSeen && emptySince.IsZero() {
			emptySince = time.Now()
		}
		now := time.Now()
		idle := (fileSeen && !emptySince.IsZero() && now.Sub(emptySince) >= cfg.Grace) ||
			(!fileSeen && now.Sub(start) >= startGrace)
		if idle && statRecords(cfg.Dir) == seen {
			// Leave the pid file first: from here on Ensure sees no server
			// and starts a new one, which waits for our lock.
			os.Remove(pidPath)
			log.Info("no networks left, exiting")
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			dirty = true
		case <-ticker.C:
		}
	}
}

// stamp identifies one version of the records file cheaply.
type stamp struct {
	exists bool
	ino    uint64
	mtime  int64
	size   int64
}

func statRecords(dir string) stamp {
	fi, err := os.Stat(filepath.Join(dir, recordsFile))
	if err != nil {
		return stamp{}
	}
	st := stamp{exists: true, mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

type server struct {
	cfg       Config
	log       *slog.Logger
	mux       *mux
	records   *recordsHandler
	forward   *forwarder
	listeners map[netip.AddrPort]*listener
	networks  int
	loaded    uint64
}

func newServer(ctx context.Context, cfg Config, log *slog.Logger) *server {
	fwd := &forwarder{log: log}
	rec := &recordsHandler{next: fwd}
	return &server{
		cfg:       cfg,
		log:       log,
		mux:       &mux{ctx: ctx, chain: rec},
		records:   rec,
		forward:   fwd,
		listeners: map[netip.AddrPort]*listener{},
	}
}

// apply makes the server match r and reports whether every listener is
// bound; only then is the generation written to the loaded file.
func (s *server) apply(ctx context.Context, r Records) bool {
	want := map[netip.AddrPort]bool{}
	for _, n := range r.Networks {
		if !n.Gateway.IsValid() {
			s.log.Warn("network without gateway", "network", n.Name)
			continue
		}
		want[netip.AddrPortFrom(n.Gateway.Unmap(), uint16(s.cfg.Port))] = true
	}
	// Names first: queries reaching listeners that already exist see the
	// new containers even while other binds are still being retried.
	s.records.idx.Store(newIndex(r))
	s.networks = len(r.Networks)
	s.forward.setUpstreams(s.upstreams(want))

	for ap, l := range s.listeners {
		if !want[ap] {
			l.close()
			delete(s.listeners, ap)
			s.log.Info("stopped listening", "addr", ap.String())
		}
	}
	ok := true
	for _, ap := range sortedAddrs(want) {
		if _, bound := s.listeners[ap]; bound {
			continue
		}
		l, err := listenRetry(ctx, ap, s.mux)
		if err != nil {
			s.log.Error("listen", "addr", ap.String(), "err", err)
			ok = false
			continue
		}
		s.listeners[ap] = l
		s.log.Info("listening", "addr", ap.String())
	}
	if ok && r.Generation != s.loaded {
		err := atomicfile.Write(filepath.Join(s.cfg.Dir, loadedFile), []byte(strconv.FormatUint(r.Generation, 10)+"\n"), 0o644)
		if err != nil {
			s.log.Error("write loaded generation", "err", err)
			return false
		}
		s.loaded = r.Generation
	}
	return ok
}

// upstreams returns the configured resolvers or the host's, leaving out our
// own listeners so a host resolv.conf pointing at a gateway cannot loop.
func (s *server) upstreams(own map[netip.AddrPort]bool) []string {
	ups := s.cfg.Upstreams
	if len(ups) == 1 && ups[0] == NoUpstreams {
		return nil
	}
	if len(ups) == 0 {
		data, err := os.ReadFile(hostResolvConf)
		if err != nil {
			s.log.Warn("no upstream resolvers", "err", err)
		}
		ups = parseResolvConf(data)
	}
	var out []string
	for _, u := range ups {
		if ap, err := netip.ParseAddrPort(u); err == nil && own[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] {
			continue
		}
		out = append(out, u)
	}
	return out
}

// NoUpstreams as the only upstream turns forwarding off: names that are
// not in the records get SERVFAIL. Tests use it so that no query leaves the
// machine.
const NoUpstreams = "none"

func sortedAddrs(m map[netip.AddrPort]bool) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m))
	for ap := range m {
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

func (s *server) closeAll() {
	for ap, l := range s.listeners {
		l.close()
		delete(s.listeners, ap)
	}
}

// listener serves one address over UDP and TCP.
type listener struct {
	udp, tcp *dns.Server
}

func listenRetry(ctx context.Context, ap netip.AddrPort, h dns.Handler) (*listener, error) {
	deadline := time.Now().Add(bindPatience)
	delay := 10 * time.Millisecond
	for {
		l, err := listen(ctx, ap, h)
		if err == nil {
			return l, nil
		}
		// Only a missing address is worth waiting for; a port in use or a
		// permission problem will not go away by itself.
		if !errors.Is(err, syscall.EADDRNOTAVAIL) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func listen(ctx context.Context, ap netip.AddrPort, h dns.Handler) (*listener, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", ap.String())
	if err != nil {
		return nil, err
	}
	ln, err := lc.Listen(ctx, "tcp", ap.String())
	if err != nil {
		pc.Close()
		return nil, err
	}
	l := &listener{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 5 * time.Second }},
	}
	if err := start(l.udp); err != nil {
		pc.Close()
		ln.Close()
		return nil, err
	}
	if err := start(l.tcp); err != nil {
		shutdown(l.udp)
		ln.Close()
		return nil, err
	}
	return l, nil
}

// start runs srv and returns once it is accepting, so that a later Shutdown
// never races with the server's own start-up.
func start(srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
		return nil
	case err := <-errc:
		return err
	}
}

func shutdown(srv *dns.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout+time.Second)
	defer cancel()
	// An error means handlers outlived the deadline; they finish on their
	// own and the sockets are closed either way.
	_ = srv.ShutdownContext(ctx)
}

func (l *listener) close() {
	shutdown(l.udp)
	shutdown(l.tcp)
}
