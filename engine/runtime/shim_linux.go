package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// Config tells a shim where everything of its container is. Spawn hands it
// to the shim as JSON on its standard input; fields may be added over time.
type Config struct {
	ID         string `json:"id"`
	Bundle     string `json:"bundle"`      // the container's directory; config.json there is its OCI spec, unless Spec is set
	StateRoot  string `json:"state_root"`  // libcontainer's state directory root
	LogPath    string `json:"log_path"`    // json-file log
	StatusPath string `json:"status_path"` // Status record
	Socket     string `json:"socket"`      // control socket
	PidFile    string `json:"pid_file"`    // the shim's own pid
	// Log says how the log is kept (rotation), or whether it is at all.
	Log LogConfig `json:"log,omitzero"`
	// Restart is the Compose restart policy the shim applies: "no" (or
	// empty), "always", "unless-stopped", "on-failure" or "on-failure:N".
	Restart string `json:"restart,omitempty"`
	// Hold creates the container and waits for a start request, so a
	// client can attach before the first byte of output (run -it).
	Hold bool `json:"hold,omitempty"`
	// OpenStdin keeps the main process's input open for attached clients
	// (stdin_open); StdinOnce closes it when the first of them leaves.
	OpenStdin bool `json:"open_stdin,omitempty"`
	StdinOnce bool `json:"stdin_once,omitempty"`
	// StopSignal is the container's stop signal: a kill with it ends the
	// restart policy, as a stop does.
	StopSignal string `json:"stop_signal,omitempty"`
	// Health is the healthcheck the shim runs; nil or disabled: none.
	Health *HealthConfig `json:"health,omitempty"`
	// SeccompCache is where compiled seccomp programs are kept (one per
	// profile, see entry_linux.go); empty leaves the compiling to
	// libcontainer at every start.
	SeccompCache string `json:"seccomp_cache,omitempty"`
	// CgroupMounts are the host's cgroup v1 mounts, set by Spawn, so the
	// shim does not read the mount table for them (cgroupmounts_linux.go).
	CgroupMounts []CgroupMount `json:"cgroup_mounts,omitempty"`
	// Spec, when set, is the OCI spec Spawn converts, handed over in
	// memory: the bundle's config.json is then not read (the engine's
	// starts write none: a file and a JSON round trip less per start).
	// Never encoded: the shim reads no spec.
	Spec *specs.Spec `json:"-"`
	// Set by Spawn from the bundle's spec (start_linux.go): the container's
	// first process, libcontainer's configuration (its JSON; bytes, not
	// json.RawMessage, so it is encoded as base64, not scanned again) and
	// the spec's seccomp profile (none: no profile).
	Process      *ProcessConfig `json:"process,omitempty"`
	Libcontainer []byte         `json:"libcontainer,omitempty"`
	Seccomp      *SeccompRef    `json:"seccomp,omitempty"`
}

// ConfigFromStdin, as the shim's configuration path, says the configuration
// comes on standard input (as Spawn passes it).
const ConfigFromStdin = "-"

// ReadConfig loads a shim configuration from a file, or from standard input
// (ConfigFromStdin).
func ReadConfig(path string) (Config, error) {
	var c Config
	if path == ConfigFromStdin {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return c, fmt.Errorf("shim config: %w", err)
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("shim config: %w", err)
		}
	} else if err := atomicfile.ReadJSON(path, &c); err != nil {
		return c, err
	}
	if c.ID == "" || c.Bundle == "" || c.Socket == "" || c.StatusPath == "" {
		return c, fmt.Errorf("shim config %s: missing fields", path)
	}
	return c, nil
}

// ExitFunc runs in the shim after the container has exited and been
// destroyed, before the final status is written: the engine hangs its
// teardown (network, mounts, DNS) here, since no daemon is left to do it.
type ExitFunc func(ctx context.Context, st Status) error

// Hooks let the engine act at points of the container's life.
type Hooks struct {
	Running func() // once, when the container first runs
	Exit    ExitFunc
}

// Serve is the body of "berth shim": it creates and starts the container,
// tells the spawner (through the ready pipe it inherited) whether that
// worked, then supervises it and answers requests until it exits. It
// returns when the container is gone.
func Serve(ctx context.Context, cfg Config, hooks Hooks) error {
	// The shim outlives the terminal it came from; stray job-control
	// signals must not take it down with the container still running.
	// Caught and dropped, not ignored: an ignored signal stays ignored in
	// every process the shim starts, the container's too.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	holdLock()
	ready := readyPipe()
	released := holdReleased()

	policy, err := parseRestart(cfg.Restart)
	if err == nil {
		err = cfg.Health.Validate()
	}
	if err != nil {
		report(ready, err)
		return err
	}
	s := &shim{
		cfg: cfg, policy: policy,
		changed: make(chan struct{}), exited: make(chan struct{}),
		stopReq: make(chan struct{}), startReq: make(chan struct{}),
		attached: map[*attachment]struct{}{},
	}
	s.status = Status{State: StateCreated, ShimPid: os.Getpid(), Protocol: ProtocolVersion}
	s.published = s.status
	s.reapStrays()
	if err := s.setup(); err != nil {
		s.cleanupFailedStart()
		report(ready, err)
		return err
	}
	go s.serveControl()
	if err := s.firstRun(ready, released); err != nil {
		s.cleanupFailedStart()
		report(ready, err)
		return err
	}
	if hooks.Running != nil {
		hooks.Running()
	}
	s.supervise(ctx, hooks.Exit)
	return nil
}

func report(ready *os.File, err error) {
	if ready == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
	} else {
		fmt.Fprintln(ready, "ok")
	}
	ready.Close()
}

type shim struct {
	cfg      Config
	lcfg     *configs.Config
	program  *program // the precompiled seccomp program, if any (entry_linux.go)
	policy   restartPolicy
	listener net.Listener
	log      *jsonlog.Writer
	handlers sync.WaitGroup
	writeMu  sync.Mutex // serialises updates, so the file ends with the latest
	// starts is held shared by each exec and probe from its check that
	// the container is not paused to the end of its start, exclusively by
	// a pause (runIn, pause).
	starts sync.RWMutex

	mu      sync.Mutex
	status  Status
	changed chan struct{} // closed and replaced at every published change
	runEnds int           // runs that have ended
	// published is the status as the file has it, and publishedEnds the
	// ended runs it counts: what waiters see, so none answers ahead of
	// the file.
	published     Status
	publishedEnds int
	run           *run // the current run; nil between runs
	attached      map[*attachment]struct{}
	logError      string        // the log writer's latest word (logFailed)
	stopping      bool          // a stop or kill was asked for: never restart
	stopReq       chan struct{} // closed when stopping is set
	startReq      chan struct{} // closed by a start request (Hold)
	held          bool          // the first run waits for a start request
	started       bool
	exited        chan struct{} // closed after the final exit
}

// run is one run of the container: a libcontainer container and its init.
type run struct {
	container *libcontainer.Container
	init      *libcontainer.Process
	io        *procIO
	copiers   sync.WaitGroup
	startedAt time.Time
	ended     chan struct{} // closed when the init has exited
	monitors  sync.WaitGroup
}

// setup prepares what every run shares: pid file, libcontainer's
// configuration, seccomp program, log, socket.
func (s *shim) setup() error {
	cfg := s.cfg
	sw := stopwatch.Start(context.Background(), "shim setup", "id", cfg.ID[:min(12, len(cfg.ID))])
	defer sw.Done()
	if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	var err error
	if s.lcfg, err = loadStart(cfg); err != nil {
		return err
	}
	if cfg.Seccomp != nil {
		if err := s.seccomp(*cfg.Seccomp); err != nil {
			return err
		}
	}
	useCgroupMounts(cfg.CgroupMounts)
	// A crash may have left libcontainer state for this ID behind.
	if old, err := libcontainer.Load(cfg.StateRoot, cfg.ID); err == nil {
		_ = old.Signal(unix.SIGKILL)
		_ = old.Destroy()
	}
	sw.Lap("spec")
	if cfg.Log.Kept() {
		o := cfg.Log.Options()
		o.OnError = s.logFailed
		if s.log, err = jsonlog.Create(cfg.LogPath, o); err != nil {
			return err
		}
	}
	if s.listener, err = inheritedListener(); err != nil {
		return err
	}
	if s.listener == nil {
		// Not spawned by Spawn (which hands over a socket that listens
		// from before this process exists): listen here.
		_ = os.Remove(cfg.Socket)
		if s.listener, err = listenUnix(cfg.Socket); err != nil {
			return err
		}
	}
	sw.Lap("io")
	return nil
}

// firstRun creates the container, waits for a start request when told to
// hold it, starts it and reports to the spawner. A stop that comes while
// it does so ends the container before its command runs.
func (s *shim) firstRun(ready *os.File, released <-chan struct{}) error {
	r, err := s.create()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.run = r
	s.held = s.cfg.Hold
	s.mu.Unlock()
	if s.cfg.Hold {
		s.update(func(st *Status) { st.State = StateCreated })
		report(ready, nil)
		ready = nil
		select {
		case <-s.startReq:
		case <-s.stopReq:
		case <-released:
			// The spawner let go without starting it (it died, or gave
			// up): nobody is left to start it.
			s.requestStop()
		}
	}
	if s.isStopping() {
		_ = r.init.Signal(unix.SIGKILL)
		report(ready, nil)
		return nil
	}
	if err := s.start(r); err != nil {
		return err
	}
	report(ready, nil)
	return nil
}

// CgroupParentLock is the lock, under libcontainer's state root, that a
// start holds shared while it makes the container's cgroups, and that the
// removal of the instance's emptied parent cgroup must take exclusively.
func CgroupParentLock(stateRoot string) string {
	return filepath.Join(stateRoot, "cgroup-parent.lock")
}

// create makes a new libcontainer container whose init waits at the exec
// fifo for start (containerd's create), with its stdio wired to the shim.
func (s *shim) create() (*run, error) {
	// Until the container's own cgroups exist, its instance's parent cgroup
	// is empty, and a teardown elsewhere would remove it under this start.
	parent, err := lockfile.AcquireShared(context.Background(), CgroupParentLock(s.cfg.StateRoot))
	if err != nil {
		return nil, err
	}
	defer parent.Unlock()
	if err := grantRealtime(s.lcfg.Cgroups); err != nil {
		return nil, err
	}
	c, err := libcontainer.Create(s.cfg.StateRoot, s.cfg.ID, s.lcfg)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	p := s.cfg.Process
	proc := &libcontainer.Process{
		Args: p.Args,
		Env:  p.Env,
		Cwd:  p.Cwd,
		UID:  int(p.UID),
		GID:  int(p.GID),
		Init: true,
	}
	for _, g := range p.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	entered, err := s.viaInit(proc, p.Terminal)
	if err != nil {
		_ = c.Destroy()
		return nil, fmt.Errorf("start container: %w", err)
	}
	defer entered()
	pio, err := newProcIO(proc, p.Terminal, s.cfg.OpenStdin, false, p.Size)
	if err != nil {
		_ = c.Destroy()
		return nil, err
	}
	if err := c.Start(proc); err != nil {
		pio.close()
		_ = c.Destroy()
		return nil, fmt.Errorf("start container: %w", err)
	}
	if err := pio.started(s.cfg.OpenStdin); err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		pio.close()
		_ = c.Destroy()
		return nil, err
	}
	r := &run{container: c, init: proc, io: pio, ended: make(chan struct{})}
	for _, o := range pio.outputs {
		var lines *jsonlog.LineWriter
		if s.log != nil {
			lines = s.log.Stream(o.name)
		}
		r.copiers.Add(1)
		go func() {
			defer r.copiers.Done()
			readOutput(o, func(frame byte, p []byte) {
				// The log never fails the container: a write it cannot do
				// is dropped (and recorded), and the pipe keeps draining.
				if lines != nil {
					_, _ = lines.Write(p)
				}
				s.broadcast(frame, p)
			})
			if lines != nil {
				_ = lines.Flush()
			}
		}()
	}
	return r, nil
}

// start lets the created container's init exec its command.
func (s *shim) start(r *run) error {
	if err := r.container.Exec(); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	pid, _ := r.init.Pid()
	r.startedAt = time.Now().UTC()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	health := !s.cfg.Health.Disabled()
	s.update(func(st *Status) {
		st.State = StateRunning
		st.Pid = pid
		st.StartedAt = r.startedAt
		st.Error = ""
		st.Health = nil
		if health {
			st.Health = &Health{Status: HealthStarting}
		}
		st.OOMKilled = false
	})
	if health {
		r.monitors.Add(1)
		go func() {
			defer r.monitors.Done()
			s.monitorHealth(r, s.cfg.Health.withDefaults(), r.ended)
		}()
	}
	return nil
}

func (s *shim) cleanupFailedStart() {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r != nil {
		_ = r.init.Signal(unix.SIGKILL)
		_, _ = r.init.Wait()
		r.copiers.Wait()
		r.io.close()
		_ = r.container.Destroy()
	}
	if s.listener != nil {
		s.listener.Close()
	}
	if s.log != nil {
		s.log.Close()
	}
	os.Remove(s.cfg.Socket)
	os.Remove(s.cfg.PidFile)
}

// supervise waits for each run of the container to end, restarts it as the
// policy says, and finishes with the final exit: teardown, status, cleanup.
func (s *shim) supervise(ctx context.Context, onExit ExitFunc) {
	var backoff restartBackoff
	var code int
	for {
		s.mu.Lock()
		r := s.run
		s.mu.Unlock()
		ps, err := r.init.Wait()
		code = exitCode(ps, err)
		close(r.ended)
		r.monitors.Wait()
		// A log line written just before exit must land before "exited" does.
		r.copiers.Wait()
		r.io.close()
		oom := oomKilled(r.container)
		destroyErr := r.container.Destroy()

		var again bool
		s.mu.Lock()
		s.run = nil
		s.runEnds++
		again = !s.stopping && destroyErr == nil && s.started && s.policy.restarts(code, s.status.RestartCount)
		s.mu.Unlock()
		var st Status
		s.update(func(cur *Status) {
			cur.ExitCode = code
			cur.OOMKilled = oom
			cur.FinishedAt = time.Now().UTC()
			cur.Pid = 0
			if destroyErr != nil {
				cur.Error = "destroy: " + destroyErr.Error()
			}
			if again {
				cur.State = StateRestarting
				cur.RestartCount++
			}
			st = *cur
		})
		if !again {
			break
		}
		s.endAttachments(code)
		select {
		case <-time.After(backoff.next(st.FinishedAt.Sub(st.StartedAt))):
		case <-s.stopReq:
		}
		if s.isStopping() {
			break
		}
		if err := s.restart(); err != nil {
			s.update(func(cur *Status) { cur.Error = "restart: " + err.Error() })
			break
		}
	}
	if s.log != nil {
		s.log.Close()
	}

	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.State = StateExited
	if onExit != nil {
		if err := onExit(ctx, st); err != nil && st.Error == "" {
			st.Error = "teardown: " + err.Error()
		}
	}
	s.update(func(cur *Status) { *cur = st })
	// The attached clients hear of the last exit with the final status,
	// so a command after theirs sees the container exited.
	s.endAttachments(code)
	// No new requests: whoever comes now reads the final status from the
	// record. Then the waiting requests get their answer, and the shim goes.
	s.listener.Close()
	os.Remove(s.cfg.Socket)
	os.Remove(s.cfg.PidFile)
	close(s.exited)
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// restart runs the container again for the restart policy.
func (s *shim) restart() error {
	r, err := s.create()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.run = r
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		// A stop came in while the restart was under way and found
		// nothing to signal; the new run goes at once.
		_ = r.init.Signal(unix.SIGKILL)
		return nil
	}
	if err := s.start(r); err != nil {
		_ = r.init.Signal(unix.SIGKILL)
		_, _ = r.init.Wait()
		r.copiers.Wait()
		r.io.close()
		_ = r.container.Destroy()
		s.mu.Lock()
		s.run = nil
		s.mu.Unlock()
		return err
	}
	return nil
}

// update changes the status, writes the status file, then publishes the
// change to waiters. The file comes first: a client that a waiter answers
// may read the file at once (another process's Wait then ReadStatus), and
// must never find an older state there. Updates are serialised, so the
// file always ends with the latest.
func (s *shim) update(f func(*Status)) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	f(&s.status)
	st, ends := s.status, s.runEnds
	s.mu.Unlock()
	_ = WriteStatus(s.cfg.StatusPath, st)
	s.mu.Lock()
	s.published, s.publishedEnds = st, ends
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// logFailed records in the status that writing the log fails (err), or
// works again (nil). Output meanwhile is dropped, never pushed back at the
// container.
func (s *shim) logFailed(err error) {
	s.mu.Lock()
	s.logError = ""
	if err != nil {
		s.logError = "write log: " + err.Error()
	}
	s.mu.Unlock()
	// Not in the copier's goroutine: the status file may sit on the same
	// full disk, and the copier must go on draining the container's output.
	// Whichever update runs last records the latest word.
	go s.update(func(st *Status) { st.LogError = s.logError })
}

// requestStop turns restarts off for good: the user wants it down.
func (s *shim) requestStop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping {
		s.stopping = true
		s.status.StoppedByUser = true
		close(s.stopReq)
	}
}

func (s *shim) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *shim) snapshot() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		if err != nil {
			return 255
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// signal sends sig to the container's init. A paused container is thawed
// after a signal that ends it, so the signal is delivered (Docker does the
// same).
func (s *shim) signal(sig unix.Signal, ends bool) error {
	s.mu.Lock()
	r := s.run
	paused := s.status.State == StatePaused
	s.mu.Unlock()
	if r == nil {
		return nil // between runs or gone: nothing to signal
	}
	if err := r.init.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	if paused && ends {
		if err := r.container.Resume(); err == nil {
			s.update(func(st *Status) {
				if st.State == StatePaused {
					st.State = StateRunning
				}
			})
		}
	}
	return nil
}
