package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/fatih/color"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/jsonlog"
)

// LogOptions are the flags of berth logs.
type LogOptions struct {
	Follow     bool
	Tail       int // <0: all
	Timestamps bool
	Color      bool // prefix colours; the CLI sets it only on a terminal
	NoPrefix   bool
	// Since and Until bound the lines shown by their time (zero: no
	// bound); following ends at Until.
	Since, Until time.Time
	Index        int // the replica of each service to show; 0: every one
}

// palette is the order docker compose hands colours to services.
var palette = []color.Attribute{color.FgCyan, color.FgYellow, color.FgGreen, color.FgMagenta, color.FgBlue, color.FgRed,
	color.FgHiCyan, color.FgHiYellow, color.FgHiGreen, color.FgHiMagenta, color.FgHiBlue, color.FgHiRed}

// LogMux writes the logs of several containers to one writer, each line
// whole and prefixed "web-1  | " with a colour per service. Lines are
// gathered and written together, at most flushDelay after the first one
// or once muxBuffer bytes wait: one write per line was the mux's cost.
type LogMux struct {
	mu      sync.Mutex
	out     io.Writer
	opts    LogOptions
	width   int
	colors  map[string]*color.Color
	buf     []byte // lines not written yet
	pending bool   // a flush is scheduled
}

const (
	flushDelay = 10 * time.Millisecond
	muxBuffer  = 64 << 10
)

// NewLogMux prepares prefixes for the given prefix names (sets the width).
func NewLogMux(out io.Writer, prefixes []string, services []string, o LogOptions) *LogMux {
	m := &LogMux{out: out, opts: o, colors: map[string]*color.Color{}}
	// docker compose pads to the longest name plus one: "client-1  | ".
	for _, p := range prefixes {
		m.width = max(m.width, len(p)+1)
	}
	svcs := append([]string(nil), services...)
	sort.Strings(svcs)
	for i, s := range svcs {
		c := color.New(palette[i%len(palette)])
		if o.Color {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		m.colors[s] = c
	}
	return m
}

// add makes room for a prefix and gives its service a colour, for a
// container that joins after the start.
func (m *LogMux) add(prefix, service string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.width = max(m.width, len(prefix)+1)
	if _, ok := m.colors[service]; ok {
		return
	}
	c := color.New(palette[len(m.colors)%len(palette)])
	if m.opts.Color {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	m.colors[service] = c
}

// Line writes one entry under prefix.
func (m *LogMux) Line(prefix, service string, e jsonlog.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.opts.NoPrefix {
		head := prefix + strings.Repeat(" ", max(0, m.width-len(prefix))) + " |"
		if c := m.colors[service]; c != nil && m.opts.Color {
			head = c.Sprint(head)
		}
		m.buf = append(append(m.buf, head...), ' ')
	}
	if m.opts.Timestamps {
		m.buf = append(e.Time.AppendFormat(m.buf, time.RFC3339Nano), ' ')
	}
	m.buf = append(append(m.buf, strings.TrimSuffix(e.Log, "\n")...), '\n')
	m.written()
}

// Notice writes a line of Berth's own (like "web-1 exited with code 0").
func (m *LogMux) Notice(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = fmt.Appendf(m.buf, format+"\n", args...)
	m.written()
}

// written sees that the lines just added are written soon.
func (m *LogMux) written() {
	switch {
	case len(m.buf) >= muxBuffer:
		m.flush()
	case !m.pending:
		m.pending = true
		time.AfterFunc(flushDelay, m.Flush)
	}
}

// Flush writes the lines gathered so far.
func (m *LogMux) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flush()
	m.pending = false
}

func (m *LogMux) flush() {
	if len(m.buf) > 0 {
		m.out.Write(m.buf)
		m.buf = m.buf[:0]
	}
}

// logTarget is one container to read logs from.
type logTarget struct {
	ID, Prefix, Service string
}

func newLogTarget(project string, i engine.Info) logTarget {
	return logTarget{ID: i.ID, Prefix: strings.TrimPrefix(i.Name, project+"-"), Service: i.Config.Labels[LabelService]}
}

// joiner says which containers that start while logs are followed join
// the output: those of the project (not one-off) and of the services (all
// when none are named); replica index only, unless 0.
func joiner(project string, services []string, index int) func(engine.Info) (logTarget, bool) {
	return func(i engine.Info) (logTarget, bool) {
		if len(filterContainers([]engine.Info{i}, project, withoutOneOff, services...)) == 0 ||
			index > 0 && observed(i).Number != index {
			return logTarget{}, false
		}
		return newLogTarget(project, i), true
	}
}

// Logs prints the logs of the project's containers (all, or the named
// services') through one LogMux. Following, containers that start
// meanwhile (scale, recreate, restart) join in.
func Logs(ctx context.Context, e *engine.Engine, p *types.Project, services []string, out io.Writer, o LogOptions) error {
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	return followTargets(ctx, e, joiner(p.Name, services, o.Index), out, o, nil)
}

// followTargets prints the logs of the containers join accepts. Not
// following, that is the containers there are. Following, it goes on
// until every container it follows has stopped, and a container that
// starts meanwhile joins in: a new one with all its lines, one seen
// before (restarted) from its first line not yet shown. onExit, if set,
// hears of each container whose log ended.
func followTargets(parent context.Context, e *engine.Engine, join func(engine.Info) (logTarget, bool), out io.Writer, o LogOptions, onExit func(t logTarget)) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if o.Follow && !o.Until.IsZero() {
		// docker logs --until stops following then; one in the past
		// leaves nothing to follow.
		if d := time.Until(o.Until); d > 0 {
			stop := time.AfterFunc(d, cancel)
			defer stop.Stop()
		} else {
			o.Follow = false
		}
	}
	var (
		events  chan engine.Event
		evErr   = make(chan error, 1)
		watched = make(chan struct{})
	)
	if o.Follow {
		// Watch first, then list: a container starting in between is
		// seen by one or the other.
		events = make(chan engine.Event, 64)
		go func() {
			evErr <- e.Events(ctx, func(ev engine.Event) error {
				select {
				case events <- ev:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, engine.EventOptions{Watching: func() { close(watched) }})
		}()
		select {
		case <-watched:
		case err := <-evErr:
			return err
		}
	}
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return err
	}
	var ts []logTarget
	for _, i := range infos {
		if t, ok := join(i); ok {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a].Prefix < ts[b].Prefix })
	var prefixes, services []string
	for _, t := range ts {
		prefixes = append(prefixes, t.Prefix)
		if !slices.Contains(services, t.Service) {
			services = append(services, t.Service)
		}
	}
	mux := NewLogMux(out, prefixes, services, o)
	type ended struct {
		t     logTarget
		last  time.Time // of the last line shown
		noLog bool      // logging driver none: nothing to follow
		err   error
	}
	done := make(chan ended)
	following := map[string]bool{}
	shown := map[string]time.Time{} // containers followed before: their last line shown
	follow := func(t logTarget, tail int, since time.Time) {
		following[t.ID] = true
		mux.add(t.Prefix, t.Service)
		go func() {
			last := since
			err := e.Logs(ctx, t.ID, engine.LogOptions{Tail: tail, Follow: o.Follow}, func(en jsonlog.Entry) error {
				if !en.Time.After(since) || en.Time.Before(o.Since) || !o.Until.IsZero() && en.Time.After(o.Until) {
					return nil
				}
				mux.Line(t.Prefix, t.Service, en)
				last = en.Time
				return nil
			})
			noLog := errors.Is(err, engine.ErrNoLog)
			if noLog {
				// As Compose does: a note, and the others' logs go on.
				mux.Notice("%s: no logs are available with the 'none' log driver", t.Prefix)
				err = nil
				if o.Follow && onExit != nil {
					_, err = e.WaitContainer(ctx, t.ID, engine.WaitExited)
				}
			}
			done <- ended{t, last, noLog, err}
		}()
	}
	for _, t := range ts {
		follow(t, o.Tail, time.Time{})
	}
	var firstErr error
	for len(following) > 0 {
		select {
		case d := <-done:
			delete(following, d.t.ID)
			shown[d.t.ID] = d.last
			if d.err != nil && firstErr == nil && ctx.Err() == nil {
				firstErr = d.err
				cancel()
			}
			if d.err == nil && onExit != nil {
				mux.Flush() // its last lines before what onExit prints
				onExit(d.t)
			}
			if d.err == nil && !d.noLog && o.Follow && ctx.Err() == nil {
				// Started again before its reader saw the stop: the start
				// event came while it was still followed.
				if i, err := e.Inspect(ctx, d.t.ID); err == nil && i.Status.Up() {
					follow(d.t, -1, d.last)
				}
			}
		case ev := <-events:
			if ev.Action != engine.ActionStart || following[ev.Container.ID] {
				continue
			}
			if t, ok := join(engine.Info{Container: ev.Container, Status: ev.Status}); ok {
				follow(t, -1, shown[t.ID])
			}
		case err := <-evErr:
			if ctx.Err() == nil && firstErr == nil {
				firstErr = err
				cancel()
			}
			evErr = nil
		}
	}
	cancel()
	mux.Flush()
	if evErr != nil && o.Follow {
		<-evErr
	}
	if firstErr == nil {
		firstErr = parent.Err() // Ctrl-C, not --until
	}
	return firstErr
}
