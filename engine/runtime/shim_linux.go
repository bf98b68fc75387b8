package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// Config tells a shim where everything of its container is. The engine
// writes it as JSON next to the socket; fields may be added over time.
type Config struct {
	ID         string `json:"id"`
	Bundle     string `json:"bundle"`      // directory holding config.json (the OCI spec)
	StateRoot  string `json:"state_root"`  // libcontainer's state directory root
	LogPath    string `json:"log_path"`    // json-file log
	StatusPath string `json:"status_path"` // Status record
	Socket     string `json:"socket"`      // control socket
	PidFile    string `json:"pid_file"`    // the shim's own pid
	// Restart is the Compose restart policy the shim applies: "no" (or
	// empty), "always", "unless-stopped", "on-failure" or "on-failure:N".
	Restart string `json:"restart,omitempty"`
}

// ReadConfig loads a shim configuration file.
func ReadConfig(path string) (Config, error) {
	var c Config
	if err := atomicfile.ReadJSON(path, &c); err != nil {
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

// Serve is the body of "berth shim": it creates and starts the container,
// tells the spawner through ready (a pipe, may be nil) whether that worked,
// then supervises it until it exits. It returns when the container is gone.
// running, if not nil, is called once the container runs (the engine
// starts its watchers there).
func Serve(ctx context.Context, cfg Config, ready *os.File, onExit ExitFunc, running func()) error {
	// The shim outlives the terminal it came from; stray job-control
	// signals must not take it down with the container still running.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)

	policy, err := parseRestart(cfg.Restart)
	if err != nil {
		report(ready, err)
		return err
	}
	s := &shim{cfg: cfg, policy: policy, exited: make(chan struct{}), stopReq: make(chan struct{})}
	if err := s.start(); err != nil {
		s.cleanupFailedStart()
		report(ready, err)
		return err
	}
	report(ready, nil)
	if running != nil {
		running()
	}
	s.supervise(ctx, onExit)
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
	spec     *specs.Spec
	lcfg     *configs.Config
	policy   restartPolicy
	listener net.Listener
	log      *jsonlog.Writer
	handlers sync.WaitGroup

	// Per run of the container; replaced by each restart.
	container *libcontainer.Container
	copiers   *sync.WaitGroup

	mu       sync.Mutex
	process  *libcontainer.Process // nil between runs
	status   Status
	stopping bool          // a stop or kill was asked for: never restart
	stopReq  chan struct{} // closed when stopping is set
	exited   chan struct{} // closed after the final exit
}

// start prepares what every run shares (pid file, spec, log, socket) and
// runs the container the first time.
func (s *shim) start() error {
	cfg := s.cfg
	sw := stopwatch.Start(context.Background(), "shim start", "id", cfg.ID[:min(12, len(cfg.ID))])
	defer sw.Done()
	if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	spec, err := loadSpec(filepath.Join(cfg.Bundle, "config.json"))
	if err != nil {
		return err
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil && !seccompBuilt {
		return errors.New("this berth was built without the seccomp build tag; rebuild with make build")
	}
	// specconv resolves relative paths against the working directory, which
	// for an OCI runtime is the bundle.
	if err := os.Chdir(cfg.Bundle); err != nil {
		return err
	}
	s.spec = spec
	if s.lcfg, err = specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: cfg.ID, Spec: spec}); err != nil {
		return fmt.Errorf("convert spec: %w", err)
	}
	// A crash may have left libcontainer state for this ID behind.
	if old, err := libcontainer.Load(cfg.StateRoot, cfg.ID); err == nil {
		_ = old.Signal(unix.SIGKILL)
		_ = old.Destroy()
	}
	sw.Lap("spec")
	if s.log, err = jsonlog.Create(cfg.LogPath); err != nil {
		return err
	}
	// Listen before starting so a stop that arrives right after "ready"
	// always finds the socket.
	_ = os.Remove(cfg.Socket)
	if s.listener, err = listenUnix(cfg.Socket); err != nil {
		return err
	}
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		return err
	}
	sw.Lap("io")
	if err := s.runOnce(); err != nil {
		return err
	}
	sw.Lap("run")
	return nil
}

// runOnce creates and starts the container and records it running.
func (s *shim) runOnce() error {
	c, err := libcontainer.Create(s.cfg.StateRoot, s.cfg.ID, s.lcfg)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	s.container = c
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	p := s.spec.Process
	proc := &libcontainer.Process{
		Args:   p.Args,
		Env:    p.Env,
		Cwd:    p.Cwd,
		UID:    int(p.User.UID),
		GID:    int(p.User.GID),
		Stdout: outW,
		Stderr: errW,
		Init:   true,
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	if err := c.Run(proc); err != nil {
		outW.Close()
		errW.Close()
		outR.Close()
		errR.Close()
		return fmt.Errorf("start container: %w", err)
	}
	// Only the container holds the write ends now, so the copiers see EOF
	// when its last process exits.
	outW.Close()
	errW.Close()
	copiers := &sync.WaitGroup{}
	copiers.Add(2)
	go func() { defer copiers.Done(); s.log.Copy("stdout", outR); outR.Close() }()
	go func() { defer copiers.Done(); s.log.Copy("stderr", errR); errR.Close() }()
	s.copiers = copiers

	pid, _ := proc.Pid()
	s.mu.Lock()
	s.process = proc
	restarts := s.status.RestartCount
	s.status = Status{State: StateRunning, Pid: pid, ShimPid: os.Getpid(), StartedAt: time.Now().UTC(), RestartCount: restarts}
	st := s.status
	s.mu.Unlock()
	return WriteStatus(s.cfg.StatusPath, st)
}

func (s *shim) cleanupFailedStart() {
	if s.container != nil {
		_ = s.container.Destroy()
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
	go s.serveControl()

	var st Status
	var backoff restartBackoff
	for {
		ps, err := s.process.Wait()
		code := exitCode(ps, err)
		// A log line written just before exit must land before "exited" does.
		s.copiers.Wait()
		destroyErr := s.container.Destroy()

		s.mu.Lock()
		s.process = nil
		st = s.status
		st.ExitCode = code
		st.FinishedAt = time.Now().UTC()
		if destroyErr != nil {
			st.Error = "destroy: " + destroyErr.Error()
		}
		again := !s.stopping && destroyErr == nil && s.policy.restarts(code, st.RestartCount)
		if again {
			st.State = StateRestarting
			st.RestartCount++
		}
		s.status = st
		s.mu.Unlock()
		if !again {
			break
		}
		_ = WriteStatus(s.cfg.StatusPath, st)
		select {
		case <-time.After(backoff.next(st.FinishedAt.Sub(st.StartedAt))):
		case <-s.stopReq:
		}
		if s.isStopping() {
			break
		}
		if err := s.runOnce(); err != nil {
			st.Error = "restart: " + err.Error()
			if s.container != nil {
				_ = s.container.Destroy()
			}
			break
		}
		if s.isStopping() {
			// A stop came in while the restart was under way and found
			// nothing to signal; the new run goes at once.
			_ = s.signal(unix.SIGKILL)
		}
	}
	s.log.Close()

	st.State = StateExited
	if onExit != nil {
		if err := onExit(ctx, st); err != nil && st.Error == "" {
			st.Error = "teardown: " + err.Error()
		}
	}
	_ = WriteStatus(s.cfg.StatusPath, st)
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
	close(s.exited)

	// Let requests waiting for the exit get their answer, then go.
	s.listener.Close()
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	os.Remove(s.cfg.Socket)
	os.Remove(s.cfg.PidFile)
}

// requestStop turns restarts off for good: the user wants it down.
func (s *shim) requestStop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping {
		s.stopping = true
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

func (s *shim) serveControl() {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer conn.Close()
			s.handle(conn)
		}()
	}
}

func (s *shim) handle(conn net.Conn) {
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	resp := Response{}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else if err := s.do(req); err != nil {
		resp.Error = err.Error()
	}
	st := s.snapshot()
	resp.Status = &st
	_ = json.NewEncoder(conn).Encode(resp)
}

func (s *shim) do(req Request) error {
	switch req.Op {
	case OpState:
		return nil
	case OpWait:
		<-s.exited
		return nil
	case OpKill:
		sig, err := ParseSignal(req.Signal, unix.SIGKILL)
		if err != nil {
			return err
		}
		s.requestStop()
		return s.signal(sig)
	case OpStop:
		sig, err := ParseSignal(req.Signal, unix.SIGTERM)
		if err != nil {
			return err
		}
		s.requestStop()
		if err := s.signal(sig); err != nil {
			return err
		}
		timer := time.NewTimer(time.Duration(req.Timeout) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-s.exited:
			return nil
		case <-timer.C:
		}
		if err := s.signal(unix.SIGKILL); err != nil {
			return err
		}
		<-s.exited
		return nil
	default:
		return fmt.Errorf("unknown op %q", req.Op)
	}
}

func (s *shim) signal(sig unix.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.process == nil {
		return nil // between runs or gone: nothing to signal
	}
	if err := s.process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	return nil
}

// ParseSignal reads "SIGTERM", "TERM" or "15"; empty gives def.
func ParseSignal(s string, def unix.Signal) (unix.Signal, error) {
	if s == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func loadSpec(path string) (*specs.Spec, error) {
	var spec specs.Spec
	if err := atomicfile.ReadJSON(path, &spec); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if spec.Process == nil || spec.Root == nil {
		return nil, fmt.Errorf("spec %s: process and root are required", path)
	}
	return &spec, nil
}
