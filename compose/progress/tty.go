package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// ttyWriter draws one line per resource with mpb: a state mark, the ID,
// the text, and for byte counts a bar, sizes and speed. Children are drawn
// under their parent.
type ttyWriter struct {
	p *mpb.Progress

	mu       sync.Mutex
	rows     map[string]*row
	parents  map[string]int // parent ID -> its rank, the high bits of its rows' priority
	children map[string]int // parent ID -> children made so far
}

type row struct {
	mu    sync.Mutex
	ev    Event
	start time.Time // first byte seen, for the speed
	bar   *mpb.Bar
}

func newTTY(out io.Writer) *ttyWriter {
	return &ttyWriter{
		// ForceTTY alone does not turn rendering on: auto refresh does.
		p:        mpb.New(mpb.WithOutput(out), mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithWidth(120), mpb.WithRefreshRate(120*time.Millisecond)),
		rows:     map[string]*row{},
		parents:  map[string]int{},
		children: map[string]int{},
	}
}

func (w *ttyWriter) rank(id string) int {
	r, ok := w.parents[id]
	if !ok {
		r = len(w.parents) + 1
		w.parents[id] = r
	}
	return r
}

func (w *ttyWriter) Event(ev Event) {
	w.mu.Lock()
	r := w.rows[ev.key()]
	if r == nil || r.bar.Completed() && ev.State < Done {
		// New, or working again after it finished (a container restarted):
		// a new line, under the same parent.
		var prio int
		if ev.Parent == "" {
			prio = w.rank(ev.ID) << 16
		} else {
			w.children[ev.Parent]++
			prio = w.rank(ev.Parent)<<16 + w.children[ev.Parent]
		}
		r = &row{ev: ev}
		bar, err := w.p.Add(0, r.filler(),
			mpb.BarPriority(prio),
			mpb.BarWidth(30),
			mpb.PrependDecorators(decor.Any(r.prefix, decor.WC{C: decor.DSyncWidthR})),
			mpb.AppendDecorators(decor.Any(r.suffix, decor.WC{C: decor.DextraSpace})),
		)
		if err != nil { // the display was shut down: nothing more to draw
			w.mu.Unlock()
			return
		}
		r.bar = bar
		w.rows[ev.key()] = r
	}
	w.mu.Unlock()

	r.mu.Lock()
	if ev.Current > 0 && r.start.IsZero() {
		r.start = time.Now()
	}
	r.ev = ev
	r.mu.Unlock()
	if ev.State >= Done {
		r.bar.SetTotal(-1, true) // complete: draws its last frame and stops
		return
	}
	if ev.Total > 0 {
		r.bar.SetTotal(ev.Total, false)
	}
	r.bar.SetCurrent(ev.Current)
}

func (w *ttyWriter) Close() error {
	w.mu.Lock()
	for _, r := range w.rows {
		if !r.bar.Completed() {
			r.bar.SetTotal(-1, true)
		}
	}
	w.mu.Unlock()
	w.p.Wait()
	return nil
}

var marks = map[State]string{Waiting: " ", Working: "⠿", Done: "✔", Warning: "!", Error: "✘"}

func (r *row) prefix(decor.Statistics) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	indent := " "
	if r.ev.Parent != "" {
		indent = "   "
	}
	return fmt.Sprintf("%s%s %s %s", indent, marks[r.ev.State], r.ev.ID, r.ev.Text)
}

func (r *row) suffix(decor.Statistics) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.ev
	switch {
	case ev.Detail != "":
		return ev.Detail
	case ev.State >= Done && ev.Total > 0:
		return units.HumanSize(float64(ev.Total))
	case ev.Total > 0:
		return fmt.Sprintf("%s/%s %s", units.HumanSize(float64(ev.Current)), units.HumanSize(float64(ev.Total)), r.speed())
	case ev.Current > 0:
		return fmt.Sprintf("%s %s", units.HumanSize(float64(ev.Current)), r.speed())
	}
	return ""
}

// speed is the average since the first byte: steadier than an instant rate.
func (r *row) speed() string {
	d := time.Since(r.start).Seconds()
	if r.start.IsZero() || d < 0.2 {
		return ""
	}
	return units.HumanSize(float64(r.ev.Current)/d) + "/s"
}

// filler draws a bar only while bytes move towards a known total.
func (r *row) filler() mpb.BarFiller {
	bar := mpb.BarStyle().Lbound("[").Rbound("]").Filler("=").Tip(">").Padding(" ").Build()
	return mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
		r.mu.Lock()
		show := r.ev.Total > 0 && r.ev.State == Working
		r.mu.Unlock()
		if !show {
			return nil
		}
		return bar.Fill(w, st)
	})
}
