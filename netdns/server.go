package netdns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/unixsock"
)

// Config configures Serve.
type Config struct {
	// Dir holds records.json, the control socket and the server's state
	// ($BERTH_RUN/dns).
	Dir string
	// Upstreams are "ip:port" resolvers for names the records do not
	// hold; empty means the host's (see hostUpstreams), NoUpstreams none.
	Upstreams []string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Grace is how long the server keeps running once no network is left;
	// zero means two seconds.
	Grace time.Duration
	// Ready, if set, gets one line once the server answers on its control
	// socket and serves the records ("ok"), or why it could not ("error:
	// ..."), and is then closed: the spawner waits on it.
	Ready io.WriteCloser

	lockPatience time.Duration     // tests shorten the wait for a previous server
	beforeOpen   func(path string) // tests act between a sandbox's stat and its open
}

const (
	defaultGrace = 2 * time.Second
	// defaultLockPatience is how long a new server waits for a previous
	// one in the same directory to finish exiting.
	defaultLockPatience = 5 * time.Second
)

// Serve runs the DNS server of cfg.Dir until ctx is done, a stop request
// arrives, or no network has been left for the grace period. It answers in
// every sandbox the records list, and reloads them when asked on its control
// socket; it never reads them by itself, and nobody signals it.
func Serve(ctx context.Context, cfg Config) (err error) {
	ready := func(err error) {
		if cfg.Ready == nil {
			return
		}
		msg := "ok\n"
		if err != nil {
			msg = "error: " + err.Error() + "\n"
		}
		_, _ = io.WriteString(cfg.Ready, msg)
		cfg.Ready.Close()
		cfg.Ready = nil
	}
	defer func() { ready(err) }()
	if cfg.Dir == "" {
		return fmt.Errorf("dns server: directory is empty: %w", errdefs.ErrInvalidArgument)
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
	// The lock goes before the control connections close: a client that sees
	// its connection end may start a new server at once.
	var conns connSet
	defer conns.closeAll()
	defer lock.Unlock()

	// With the lock held, a socket file left by a killed server is stale.
	sockPath := filepath.Join(cfg.Dir, controlSocket)
	os.Remove(sockPath)
	ctl, err := unixsock.Listen(sockPath)
	if err != nil {
		return fmt.Errorf("dns server: control socket: %w", err)
	}
	defer os.Remove(sockPath) // before the lock goes
	defer ctl.Close()
	if err := os.Chmod(sockPath, 0o600); err != nil {
		return fmt.Errorf("dns server: %w", err)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	s := newServer(sctx, cfg, log)
	defer s.closeAll()
	if _, err := s.reload(); err != nil {
		log.Error("load records", "err", err)
	}
	ready(nil)
	log.Info("serving", "pid", os.Getpid(), "generation", s.generation.Load())

	var wg sync.WaitGroup
	defer wg.Wait()
	defer ctl.Close() // ends the accept loop before wg.Wait
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ctl.AcceptUnix()
			if err != nil {
				return
			}
			if !conns.add(c) {
				c.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.control(c, &conns, stop)
			}()
		}
	}()

	idle := time.NewTimer(cfg.Grace)
	defer idle.Stop()
	for {
		if s.networks.Load() > 0 {
			idle.Stop()
		}
		select {
		case <-sctx.Done():
			log.Info("stopping")
			return nil
		case <-s.changed:
			if s.networks.Load() == 0 {
				idle.Reset(cfg.Grace)
			}
		case <-idle.C:
			if s.networks.Load() == 0 {
				log.Info("no networks left, exiting")
				return nil
			}
		}
	}
}

// request and reply are the control protocol: one JSON line each way per
// connection (a watch gets no reply: its connection ends with the server).
type request struct {
	Op string `json:"op"` // reload, status, stop, watch
}

type reply struct {
	Generation uint64            `json:"generation"`
	Pid        int               `json:"pid,omitempty"`
	Sandboxes  int               `json:"sandboxes"`
	Failed     map[string]string `json:"failed,omitempty"` // sandbox -> why it has no listener
	Error      string            `json:"error,omitempty"`
}

// control serves one control connection.
func (s *server) control(c *net.UnixConn, conns *connSet, stop func()) {
	defer conns.remove(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeReply(c, reply{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case "reload":
		failed, err := s.reload()
		rep := s.status()
		rep.Failed = failed
		if err != nil {
			rep.Error = err.Error()
		}
		writeReply(c, rep)
	case "status":
		writeReply(c, s.status())
	case "stop":
		writeReply(c, s.status())
		// The connection stays open until the server is gone, so the client
		// that asked learns when it is.
		conns.keep(c)
		stop()
		return
	case "watch":
		// Held until the server exits: its end tells the watcher.
		conns.keep(c)
		return
	default:
		writeReply(c, reply{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
	c.Close()
}

func writeReply(c net.Conn, r reply) {
	b, _ := json.Marshal(r)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(append(b, '\n'))
}

// connSet tracks control connections so that they all end when the server
// does.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]bool // true: kept open until the server exits
	closed bool
}

func (cs *connSet) add(c net.Conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	if cs.conns == nil {
		cs.conns = map[net.Conn]bool{}
	}
	cs.conns[c] = false
	return true
}

func (cs *connSet) keep(c net.Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, ok := cs.conns[c]; ok {
		cs.conns[c] = true
	}
}

// remove forgets a connection unless it is kept.
func (cs *connSet) remove(c net.Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.conns[c] {
		delete(cs.conns, c)
	}
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	for c := range cs.conns {
		c.Close()
	}
	cs.conns = nil
}

type server struct {
	ctx context.Context
	cfg Config
	log *slog.Logger
	fwd *forwarder
	idx atomic.Pointer[index]
	mu  sync.Mutex // serialises reloads
	sbx map[string]*sandbox
	pid int

	generation atomic.Uint64
	networks   atomic.Int64
	changed    chan struct{} // a reload changed the number of networks
}

// sandbox is the server's side of one sandbox: its namespace, its sockets
// and the DNS servers on them.
type sandbox struct {
	id   nsID
	sock *sandboxSockets
	udp  *udpServer
	tcp  *dns.Server
}

func newServer(ctx context.Context, cfg Config, log *slog.Logger) *server {
	s := &server{
		ctx:     ctx,
		cfg:     cfg,
		log:     log,
		fwd:     &forwarder{log: log},
		sbx:     map[string]*sandbox{},
		pid:     os.Getpid(),
		changed: make(chan struct{}, 1),
	}
	s.idx.Store(newIndex(Records{}))
	return s
}

func (s *server) status() reply {
	s.mu.Lock()
	n := len(s.sbx)
	s.mu.Unlock()
	return reply{Generation: s.generation.Load(), Pid: s.pid, Sandboxes: n}
}

// reload reads the records and makes the server match them: names first,
// so sandboxes that already have listeners see new containers at once, then
// a listener in each new sandbox. It returns the sandboxes it could not
// serve, with why.
func (s *server) reload() (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := ReadRecords(s.cfg.Dir)
	if err != nil {
		return nil, err
	}
	s.idx.Store(newIndex(r))
	s.fwd.setHost(hostUpstreams(s.cfg.Upstreams, s.log))
	if prev := s.networks.Swap(int64(len(r.Networks))); (prev == 0) != (len(r.Networks) == 0) {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}

	want := map[string]nsID{}
	failed := map[string]string{}
	for _, sb := range r.Sandboxes {
		id, err := statNetns(sb.Netns)
		if errors.Is(err, fs.ErrNotExist) {
			// Its container was torn down after the records were written
			// (a dependency that exits at once); its teardown drops them.
			continue
		}
		if err != nil {
			failed[sb.Netns] = err.Error()
			continue
		}
		want[sb.Netns] = id
	}
	for path, sb := range s.sbx {
		if id, ok := want[path]; !ok || id != sb.id {
			s.closeSandbox(path, sb)
		}
	}
	ports := s.readPorts()
	changedPorts := false
	for _, path := range slices.Sorted(mapKeys(want)) {
		if _, ok := s.sbx[path]; ok {
			continue
		}
		id := want[path]
		port := ports[portKey(path, id)]
		if s.cfg.beforeOpen != nil {
			s.cfg.beforeOpen(path)
		}
		sock, err := openSandbox(path, port)
		if err != nil {
			if now, serr := statNetns(path); serr != nil || now != id {
				// Torn down since the stat above, by a teardown racing this
				// reload (one container's start must not fail because
				// another's namespace went); its teardown drops the record.
				continue
			}
			failed[path] = err.Error()
			s.log.Error("listen in sandbox", "sandbox", path, "err", err)
			continue
		}
		sb := &sandbox{id: id, sock: sock}
		if err := s.serveSandbox(path, sb); err != nil {
			sock.close()
			failed[path] = err.Error()
			continue
		}
		s.sbx[path] = sb
		if sock.port != port {
			changedPorts = true
		}
	}
	if changedPorts || len(ports) != len(s.sbx) {
		s.writePorts()
	}
	s.generation.Store(r.Generation)
	if len(failed) == 0 {
		failed = nil
	}
	return failed, nil
}

// portKey names a sandbox in the ports file: its path and namespace, so a
// port is reused only for the very namespace its rules are in.
func portKey(path string, id nsID) string { return fmt.Sprintf("%s@%d:%d", path, id.dev, id.ino) }

func (s *server) readPorts() map[string]uint16 {
	ports := map[string]uint16{}
	_ = atomicfile.ReadJSON(filepath.Join(s.cfg.Dir, portsFile), &ports)
	return ports
}

func (s *server) writePorts() {
	ports := map[string]uint16{}
	for path, sb := range s.sbx {
		ports[portKey(path, sb.id)] = sb.sock.port
	}
	if err := atomicfile.WriteJSON(filepath.Join(s.cfg.Dir, portsFile), ports, 0o600); err != nil {
		s.log.Error("write ports", "err", err)
	}
}

func (s *server) serveSandbox(path string, sb *sandbox) error {
	h := &sandboxHandler{s: s, key: path}
	sb.tcp = &dns.Server{Listener: sb.sock.tcp, Handler: h, ReadTimeout: 5 * time.Second,
		IdleTimeout: func() time.Duration { return 5 * time.Second }}
	if err := start(sb.tcp); err != nil {
		return err
	}
	u, err := serveUDP(sb.sock.udp, h)
	if err != nil {
		shutdown(sb.tcp)
		return err
	}
	sb.udp = u
	return nil
}

func (s *server) closeSandbox(path string, sb *sandbox) {
	sb.udp.close()
	shutdown(sb.tcp)
	sb.sock.close()
	delete(s.sbx, path)
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, sb := range s.sbx {
		s.closeSandbox(path, sb)
	}
}

// sandboxHandler answers the queries of one sandbox over TCP (UDP: see
// udpServer): records first, the forwarder last.
type sandboxHandler struct {
	s   *server
	key string
}

// queryTimeout bounds the work for one query; stub resolvers give up after
// about five seconds, so an answer after that helps nobody.
const queryTimeout = 5 * time.Second

func (h *sandboxHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m, fwd := h.local(r)
	if fwd {
		m = h.forward(r, true)
	}
	if m != nil {
		_ = w.WriteMsg(m) // the client is gone or the socket closed: nothing to do
	}
}

// local answers r from the records, or rejects it (a nil reply: none at
// all); fwd says it is for the upstream resolvers instead.
func (h *sandboxHandler) local(r *dns.Msg) (m *dns.Msg, fwd bool) {
	m, ok := check(r)
	if !ok {
		return m, false
	}
	if c := h.s.idx.Load().clients[h.key]; c != nil {
		if m = c.answerLocal(r); m != nil {
			return m, false
		}
	}
	return nil, true
}

// forward asks the sandbox's upstream resolvers; it may wait on them.
func (h *sandboxHandler) forward(r *dns.Msg, tcp bool) *dns.Msg {
	ctx, cancel := context.WithTimeout(h.s.ctx, queryTimeout)
	defer cancel()
	return h.s.fwd.forward(ctx, h.s.idx.Load().clients[h.key], r, tcp)
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

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
