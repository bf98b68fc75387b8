package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/fatih/color"
	"golang.org/x/sync/errgroup"

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
}

// palette is the order docker compose hands colours to services.
var palette = []color.Attribute{color.FgCyan, color.FgYellow, color.FgGreen, color.FgMagenta, color.FgBlue, color.FgRed,
	color.FgHiCyan, color.FgHiYellow, color.FgHiGreen, color.FgHiMagenta, color.FgHiBlue, color.FgHiRed}

// LogMux writes the logs of several containers to one writer, each line
// whole and prefixed "web-1  | " with a colour per service.
type LogMux struct {
	mu     sync.Mutex
	out    io.Writer
	opts   LogOptions
	width  int
	colors map[string]*color.Color
}

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

// Line writes one entry under prefix.
func (m *LogMux) Line(prefix, service string, e jsonlog.Entry) {
	text := strings.TrimSuffix(e.Log, "\n")
	if m.opts.Timestamps {
		text = e.Time.Format(time.RFC3339Nano) + " " + text
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opts.NoPrefix {
		fmt.Fprintln(m.out, text)
		return
	}
	head := fmt.Sprintf("%-*s |", m.width, prefix)
	if c := m.colors[service]; c != nil {
		head = c.Sprint(head)
	}
	fmt.Fprintf(m.out, "%s %s\n", head, text)
}

// Notice writes a line of Berth's own (like "web-1 exited with code 0").
func (m *LogMux) Notice(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.out, format+"\n", args...)
}

// logTarget is one container to read logs from.
type logTarget struct {
	ID, Prefix, Service string
}

func logTargets(ctx context.Context, e *engine.Engine, project string, services []string) ([]logTarget, error) {
	infos, err := projectContainers(ctx, e, project, withoutOneOff, services...)
	if err != nil {
		return nil, err
	}
	var out []logTarget
	for _, i := range infos {
		out = append(out, logTarget{ID: i.ID, Prefix: strings.TrimPrefix(i.Name, project+"-"), Service: i.Config.Labels[LabelService]})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Prefix < out[b].Prefix })
	return out, nil
}

// Logs prints the logs of the project's containers (all, or the named
// services') through one LogMux.
func Logs(ctx context.Context, e *engine.Engine, p *types.Project, services []string, out io.Writer, o LogOptions) error {
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	ts, err := logTargets(ctx, e, p.Name, services)
	if err != nil {
		return err
	}
	return followTargets(ctx, e, ts, out, o, nil)
}

func followTargets(ctx context.Context, e *engine.Engine, ts []logTarget, out io.Writer, o LogOptions, onExit func(t logTarget)) error {
	var prefixes, services []string
	seen := map[string]bool{}
	for _, t := range ts {
		prefixes = append(prefixes, t.Prefix)
		if !seen[t.Service] {
			seen[t.Service] = true
			services = append(services, t.Service)
		}
	}
	mux := NewLogMux(out, prefixes, services, o)
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range ts {
		g.Go(func() error {
			err := e.Logs(gctx, t.ID, engine.LogOptions{Tail: o.Tail, Follow: o.Follow}, func(en jsonlog.Entry) error {
				mux.Line(t.Prefix, t.Service, en)
				return nil
			})
			if errors.Is(err, engine.ErrNoLog) {
				// As Compose does: a note, and the others' logs go on.
				mux.Notice("%s: no logs are available with the 'none' log driver", t.Prefix)
				err = nil
				if o.Follow && onExit != nil {
					_, err = e.WaitContainer(gctx, t.ID, engine.WaitExited)
				}
			}
			if err == nil && onExit != nil {
				onExit(t)
			}
			return err
		})
	}
	return g.Wait()
}
