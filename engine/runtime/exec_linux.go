package runtime

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// User is a process's resolved identity inside the container.
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additional_gids,omitempty"`
}

// exec runs a process in the container as the shim's child, so it outlives
// the client: detached, it is only reaped; attached, its stdio streams over
// conn until it exits, and a client that leaves detaches from it.
func (s *shim) exec(ctx context.Context, conn net.Conn, br *bufio.Reader, req Request) {
	p, pio, err := s.startExec(req)
	if err != nil {
		s.answer(conn, req, Response{}, err)
		return
	}
	pid, _ := p.Pid()
	wait := func() int {
		ps, err := p.Wait()
		return exitCode(ps, err)
	}
	if req.Exec.Detach {
		s.answer(conn, req, Response{Pid: pid}, nil)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			wait()
			pio.close()
		}()
		return
	}
	s.answer(conn, req, Response{Stream: true, Pid: pid}, nil)
	fc := &frameConn{w: conn}
	var outs sync.WaitGroup
	for _, o := range pio.outputs {
		outs.Add(1)
		go func() {
			defer outs.Done()
			readOutput(o, func(frame byte, b []byte) { fc.send(frame, b) })
		}()
	}
	go readInput(br, input{
		write:  pio.writeStdin,
		close:  pio.closeStdin,
		resize: pio.resize,
		gone: func() {
			// The client left: the process goes on without it. Input
			// ends (as for docker exec), output is read and dropped.
			if pio.console == nil {
				pio.closeStdin()
			}
		},
	})
	code := wait()
	outs.Wait()
	fc.send(frameExit, encodeExit(code))
	pio.close()
}

// startExec starts the process an exec request describes.
func (s *shim) startExec(req Request) (*libcontainer.Process, *procIO, error) {
	spec := req.Exec
	if spec == nil || len(spec.Args) == 0 {
		return nil, nil, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	r, st, err := s.running()
	if err != nil {
		return nil, nil, err
	}
	if st.State == StatePaused {
		return nil, nil, errPaused
	}
	base := s.cfg.Process
	p := &libcontainer.Process{
		Args: spec.Args,
		Env:  MergeEnv(append([]string(nil), base.Env...), spec.Env),
		Cwd:  spec.WorkingDir,
		UID:  int(base.UID),
		GID:  int(base.GID),
	}
	groups := base.AdditionalGids
	if u := spec.User; u != nil {
		p.UID, p.GID, groups = int(u.UID), int(u.GID), u.AdditionalGids
	}
	for _, g := range groups {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	if p.Cwd == "" {
		p.Cwd = base.Cwd
	}
	if spec.TTY && !slices.ContainsFunc(p.Env, func(kv string) bool { return envKey(kv) == "TERM" }) {
		p.Env = append(p.Env, "TERM=xterm") // as Docker sets it
	}
	if spec.Privileged {
		caps, err := allCapabilities()
		if err != nil {
			return nil, nil, err
		}
		p.Capabilities = caps
	}
	pio, err := newProcIO(p, spec.TTY, req.Stdin && !spec.Detach, spec.Detach, req.Size)
	if err != nil {
		return nil, nil, err
	}
	if err := s.runIn(r, p); err != nil {
		pio.close()
		return nil, nil, execError(err)
	}
	if err := pio.started(req.Stdin && !spec.Detach); err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		pio.close()
		return nil, nil, err
	}
	return p, pio, nil
}

// execError classes a failure to start an exec'd process the way the
// client reports it: a missing command (exit 127 in Docker), one that may
// not run (126), anything else.
func execError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return fmt.Errorf("exec: %v: %w", err, errdefs.ErrNotFound)
	case strings.Contains(msg, "permission denied"):
		return fmt.Errorf("exec: %v: %w", err, errdefs.ErrPermissionDenied)
	}
	return fmt.Errorf("exec: %w", err)
}

// allCapabilities is every capability this process may hand on (the
// kernel's, less what the host's bounding set lacks): exec --privileged.
func allCapabilities() (*configs.Capabilities, error) {
	list, err := capability.ListSupported()
	if err != nil {
		return nil, fmt.Errorf("list capabilities: %w", err)
	}
	own, err := capability.NewPid2(0)
	if err == nil {
		err = own.Load()
	}
	if err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	var names []string
	for _, c := range list {
		if own.Get(capability.BOUNDING, c) {
			names = append(names, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return &configs.Capabilities{Bounding: names, Effective: names, Permitted: names}, nil
}

// input is where a client's frames go.
type input struct {
	write  func([]byte)
	close  func()
	resize func(WindowSize) error
	gone   func() // the client left
}

// readInput applies the client's frames until the client goes away.
func readInput(br *bufio.Reader, in input) {
	buf := make([]byte, 32*1024)
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			in.gone()
			return
		}
		switch typ {
		case frameStdin:
			in.write(p)
		case frameCloseStdin:
			in.close()
		case frameResize:
			if ws, ok := decodeSize(p); ok {
				_ = in.resize(ws)
			}
		}
	}
}

// frameConn writes frames to a client; once a write fails (the client is
// gone) it drops everything after, so the process is never held up.
type frameConn struct {
	mu     sync.Mutex
	w      net.Conn
	broken bool
}

func (f *frameConn) send(typ byte, p []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return false
	}
	if err := writeFrame(f.w, typ, p); err != nil {
		f.broken = true
	}
	return !f.broken
}

// attachment is a client attached to the main process's output. The
// output copiers hand it chunks without ever waiting for it: a client that
// falls a queue behind is dropped.
type attachment struct {
	fc   *frameConn
	q    chan frameMsg
	code int
	exit bool // the run ended with code: say so before closing
	done chan struct{}
}

type frameMsg struct {
	typ byte
	p   []byte
}

const attachQueue = 256

func (a *attachment) writeLoop() {
	defer close(a.done)
	for m := range a.q {
		a.fc.send(m.typ, m.p)
	}
	if a.exit {
		a.fc.send(frameExit, encodeExit(a.code))
	}
	// Closing ends the client's stream, and this handler's input loop.
	a.fc.w.Close()
}

// attach streams the main process's output to conn and, if the container
// keeps its input open, the client's input to it, until the run ends or
// the client leaves.
func (s *shim) attach(conn net.Conn, br *bufio.Reader, req Request) {
	s.mu.Lock()
	r, st := s.run, s.status
	ok := r != nil && (st.State == StateRunning || (st.State == StateCreated && !s.started))
	if !ok || st.State == StatePaused {
		s.mu.Unlock()
		if st.State == StatePaused {
			s.answer(conn, req, Response{}, errPaused)
			return
		}
		s.answer(conn, req, Response{}, fmt.Errorf("container is not running: %w", errdefs.ErrFailedPrecondition))
		return
	}
	a := &attachment{fc: &frameConn{w: conn}, q: make(chan frameMsg, attachQueue), done: make(chan struct{})}
	s.attached[a] = struct{}{}
	s.mu.Unlock()
	s.answer(conn, req, Response{Stream: true}, nil)
	if req.Size != nil {
		_ = r.io.resize(*req.Size)
	}
	go a.writeLoop()
	// The main process's input is shared by every attached client: one
	// that ends its input closes it only with StdinOnce (run -i).
	closeOnce := func() {
		if req.Stdin && s.cfg.StdinOnce {
			r.io.closeStdin()
		}
	}
	readInput(br, input{
		write: func(p []byte) {
			if req.Stdin {
				r.io.writeStdin(p)
			}
		},
		close:  closeOnce,
		resize: r.io.resize,
		gone: func() {
			s.detach(a)
			closeOnce()
		},
	})
	<-a.done
}

// broadcast hands one chunk of the main process's output to every attached
// client.
func (s *shim) broadcast(typ byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.attached) == 0 {
		return
	}
	m := frameMsg{typ: typ, p: append([]byte(nil), p...)}
	for a := range s.attached {
		select {
		case a.q <- m:
		default:
			delete(s.attached, a)
			close(a.q)
		}
	}
}

// detach removes a client that left.
func (s *shim) detach(a *attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.attached[a]; ok {
		delete(s.attached, a)
		close(a.q)
	}
}

// endAttachments tells every attached client that the run ended with code.
func (s *shim) endAttachments(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.attached {
		a.code, a.exit = code, true
		close(a.q)
	}
	clear(s.attached)
}
