package runtime

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// monitorHealth runs the healthcheck of one run until stop is closed:
// a probe every interval (every start interval during the start period),
// none while the container is paused.
func (s *shim) monitorHealth(r *run, cfg HealthConfig, stop <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		wait := cfg.Interval
		if cfg.StartPeriod > 0 && time.Since(r.startedAt) < cfg.StartPeriod {
			wait = cfg.StartInterval
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-stop:
			return
		}
		if s.snapshot().State != StateRunning {
			continue // paused: Docker skips the probe
		}
		p, ran := s.probe(r, cfg, stop)
		if !ran {
			continue // paused since the check above
		}
		inStartPeriod := time.Since(r.startedAt) < cfg.StartPeriod
		select {
		case <-stop:
			return // the run ended under the probe: its result means nothing
		default:
		}
		s.update(func(st *Status) {
			if st.Health != nil {
				h := *st.Health
				h.Log = append([]HealthProbe(nil), h.Log...)
				h.record(cfg, p, inStartPeriod)
				st.Health = &h
			}
		})
	}
}

// probe runs the healthcheck's command once in the container, as its user
// and in its environment, and gives up on it after the timeout. ran is
// false when the container was paused before the probe could start.
func (s *shim) probe(r *run, cfg HealthConfig, stop <-chan struct{}) (_ HealthProbe, ran bool) {
	res := HealthProbe{Start: time.Now().UTC()}
	finish := func(code int, out string) (HealthProbe, bool) {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), code, out
		return res, true
	}
	base := s.cfg.Process
	p := &libcontainer.Process{
		Args: cfg.args(),
		Env:  base.Env,
		Cwd:  base.Cwd,
		UID:  int(base.UID),
		GID:  int(base.GID),
	}
	for _, g := range base.AdditionalGids {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	pio, err := newProcIO(p, false, false, false, nil)
	if err != nil {
		return finish(-1, err.Error())
	}
	defer pio.close()
	if err := s.runIn(r, p); errors.Is(err, errPaused) {
		return HealthProbe{}, false
	} else if err != nil {
		return finish(-1, execError(err).Error())
	}
	if err := pio.started(false); err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return finish(-1, err.Error())
	}
	out := &limitedBuffer{max: healthOutputMax}
	var outs sync.WaitGroup
	for _, o := range pio.outputs {
		outs.Add(1)
		go func() {
			defer outs.Done()
			readOutput(o, func(_ byte, b []byte) { out.Write(b) })
		}()
	}
	exited := make(chan int, 1)
	go func() {
		ps, err := p.Wait()
		exited <- exitCode(ps, err)
	}()
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	select {
	case code := <-exited:
		outs.Wait()
		return finish(code, out.String())
	case <-timer.C:
	case <-stop:
	}
	_ = p.Signal(unix.SIGKILL)
	<-exited
	return finish(-1, fmt.Sprintf("Health check exceeded timeout (%v)", cfg.Timeout))
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
