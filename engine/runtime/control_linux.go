package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

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

// handle answers one connection: a request line, a response line, and for
// streaming requests the frames that follow.
func (s *shim) handle(conn net.Conn) {
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		s.answer(conn, req, Response{}, fmt.Errorf("bad request: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	// The request is over when its client goes away: a client waiting
	// for an exit that is cancelled must not keep a handler behind.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch req.Op {
	case OpExec:
		s.exec(ctx, conn, br, req)
		return
	case OpAttach:
		s.attach(conn, br, req)
		return
	}
	go func() {
		// A unary request has nothing more to say: a read ends only when
		// the client closes (or the handler closes the connection).
		var b [1]byte
		_, _ = br.Read(b[:])
		cancel()
	}()
	resp, err := s.do(ctx, req)
	s.answer(conn, req, resp, err)
}

// answer writes the response line, in the version the client speaks.
func (s *shim) answer(conn net.Conn, req Request, resp Response, err error) {
	if err != nil {
		resp.encodeError(err)
	}
	if req.Version >= 2 {
		resp.Version = ProtocolVersion
	} else {
		resp.Class = "" // version 1 clients know only the message
	}
	if resp.Status == nil {
		s.mu.Lock()
		st := s.published // never ahead of the file
		s.mu.Unlock()
		resp.Status = &st
	}
	b, _ := json.Marshal(resp)
	_, _ = conn.Write(append(b, '\n'))
}

func (s *shim) do(ctx context.Context, req Request) (Response, error) {
	switch req.Op {
	case OpState:
		return Response{}, nil
	case OpWait:
		st, err := s.wait(ctx, req.Condition)
		return Response{Status: &st}, err
	case OpKill:
		sig, err := ParseSignal(req.Signal, unix.SIGKILL)
		if err != nil {
			return Response{}, err
		}
		// SIGKILL, or the container's own stop signal, ends it for good;
		// another signal (a reload, say) leaves the restart policy alone.
		ends := sig == unix.SIGKILL || sig == s.stopSignal()
		if ends {
			s.requestStop()
		}
		return Response{}, s.signal(sig, ends)
	case OpStop:
		sig, err := ParseSignal(req.Signal, unix.SIGTERM)
		if err != nil {
			return Response{}, err
		}
		s.requestStop()
		if err := s.signal(sig, true); err != nil {
			return Response{}, err
		}
		timer := time.NewTimer(time.Duration(req.Timeout) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-s.exited:
			return Response{}, nil
		case <-timer.C:
		}
		if err := s.signal(unix.SIGKILL, true); err != nil {
			return Response{}, err
		}
		<-s.exited
		return Response{}, nil
	case OpStart:
		return Response{}, s.startHeld(ctx)
	case OpPause:
		return Response{}, s.pause()
	case OpResume:
		return Response{}, s.resume()
	case OpStats:
		st, err := s.stats()
		return Response{Stats: &st}, err
	case OpPids:
		pids, err := s.pids()
		return Response{Pids: pids}, err
	}
	return Response{}, fmt.Errorf("unknown op %q: %w", req.Op, errdefs.ErrNotImplemented)
}

// stopSignal is the signal that stops the container's process.
func (s *shim) stopSignal() unix.Signal {
	sig, err := ParseSignal(s.cfg.StopSignal, unix.SIGTERM)
	if err != nil {
		return unix.SIGTERM
	}
	return sig
}

// wait blocks until cond holds, the client leaves (ctx) or the condition
// can no longer hold (an error saying why).
func (s *shim) wait(ctx context.Context, cond Condition) (Status, error) {
	if cond == ConditionExit {
		select {
		case <-s.exited:
			return s.snapshot(), nil
		case <-ctx.Done():
			return s.snapshot(), ctx.Err()
		}
	}
	s.mu.Lock()
	ends := s.publishedEnds
	s.mu.Unlock()
	for {
		s.mu.Lock()
		st, ch := s.published, s.changed
		done, err := s.holds(cond, st, ends)
		s.mu.Unlock()
		if done {
			return st, err
		}
		select {
		case <-ch:
		case <-s.exited:
			// The final status went out with this close; look once more.
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// holds says whether cond is settled by st: true with a nil error when it
// holds, true with an error when it never will. Called with s.mu held;
// ends is the count of finished runs when the wait began.
func (s *shim) holds(cond Condition, st Status, ends int) (bool, error) {
	final := isClosed(s.exited)
	switch cond {
	case ConditionNextExit:
		return s.publishedEnds > ends || final, nil
	case ConditionRunning:
		switch {
		case st.State == StateRunning || st.State == StatePaused:
			return true, nil
		case final && !s.started:
			return true, fmt.Errorf("container did not start: %s: %w", orUnknown(st.Error), errdefs.ErrFailedPrecondition)
		case final:
			return true, nil // it ran, and has exited since
		}
	case ConditionStarted:
		switch {
		case s.started && st.State != StateCreated:
			return true, nil // once the file says so too
		case s.held && s.run != nil && !s.started:
			return true, nil
		case final:
			return true, fmt.Errorf("container did not start: %s: %w", orUnknown(st.Error), errdefs.ErrFailedPrecondition)
		}
	case ConditionHealthy:
		switch {
		case st.Health == nil:
			return true, fmt.Errorf("container has no healthcheck: %w", errdefs.ErrFailedPrecondition)
		case st.Health.Status == HealthHealthy && st.Up():
			return true, nil
		case st.Health.Status == HealthUnhealthy:
			return true, fmt.Errorf("container is unhealthy: %w", errdefs.ErrFailedPrecondition)
		case final || st.State == StateExited:
			return true, fmt.Errorf("container exited (%d) before it was healthy: %w", st.ExitCode, errdefs.ErrFailedPrecondition)
		}
	default:
		return true, fmt.Errorf("unknown wait condition %q: %w", cond, errdefs.ErrInvalidArgument)
	}
	return false, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown reason"
	}
	return s
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// startHeld starts a container created with Hold and answers once it runs.
func (s *shim) startHeld(ctx context.Context) error {
	s.mu.Lock()
	if !s.cfg.Hold || s.started || isClosed(s.startReq) {
		s.mu.Unlock()
		return fmt.Errorf("container is already started: %w", errdefs.ErrConflict)
	}
	close(s.startReq)
	s.mu.Unlock()
	_, err := s.wait(ctx, ConditionRunning)
	return err
}

// running returns the current run if the container's process runs.
func (s *shim) running() (*run, Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if s.run == nil || !s.started || (st.State != StateRunning && st.State != StatePaused) {
		return nil, st, fmt.Errorf("container is not running: %w", errdefs.ErrFailedPrecondition)
	}
	return s.run, st, nil
}

// errPaused refuses what a paused container cannot do.
var errPaused = fmt.Errorf("container is paused; unpause it first: %w", errdefs.ErrConflict)

func (s *shim) pause() error {
	s.starts.Lock() // no process start under way (runIn)
	defer s.starts.Unlock()
	r, st, err := s.running()
	if err != nil {
		return err
	}
	if st.State == StatePaused {
		return fmt.Errorf("container is already paused: %w", errdefs.ErrConflict)
	}
	if err := r.container.Pause(); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	s.update(func(st *Status) { st.State = StatePaused })
	return nil
}

func (s *shim) resume() error {
	r, st, err := s.running()
	if err != nil {
		return err
	}
	if st.State != StatePaused {
		return fmt.Errorf("container is not paused: %w", errdefs.ErrConflict)
	}
	if err := r.container.Resume(); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	s.update(func(st *Status) { st.State = StateRunning })
	return nil
}

func (s *shim) stats() (Stats, error) {
	r, st, err := s.running()
	if err != nil {
		return Stats{}, err
	}
	return containerStats(r.container, st.Pid)
}

func (s *shim) pids() ([]int, error) {
	r, _, err := s.running()
	if err != nil {
		return nil, err
	}
	pids, err := r.container.Processes()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return pids, nil
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
	return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
}
