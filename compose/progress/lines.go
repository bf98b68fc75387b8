package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/go-units"
)

// plainWriter prints one line per change of a resource's state or text;
// byte counts alone print nothing, so a log stays readable.
type plainWriter struct {
	mu   sync.Mutex
	out  io.Writer
	last map[string]Event
}

func newPlain(out io.Writer) *plainWriter {
	return &plainWriter{out: out, last: map[string]Event{}}
}

func (w *plainWriter) Event(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.last[ev.key()]; ok && prev.State == ev.State && prev.Text == ev.Text && prev.Detail == ev.Detail {
		return
	}
	w.last[ev.key()] = ev
	line := ev.ID + " " + ev.Text
	if ev.State >= Done && ev.Total > 0 {
		line += " " + units.HumanSize(float64(ev.Total))
	}
	if ev.Detail != "" {
		line += ": " + ev.Detail
	}
	fmt.Fprintln(w.out, line)
}

func (w *plainWriter) Close() error { return nil }

// jsonWriter prints every change as a JSON object on its own line; byte
// updates of one resource at most every jsonEvery.
type jsonWriter struct {
	mu   sync.Mutex
	enc  *json.Encoder
	last map[string]jsonSent
}

type jsonSent struct {
	ev Event
	at time.Time
}

const jsonEvery = 200 * time.Millisecond

func newJSON(out io.Writer) *jsonWriter {
	return &jsonWriter{enc: json.NewEncoder(out), last: map[string]jsonSent{}}
}

func (w *jsonWriter) Event(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, ok := w.last[ev.key()]
	if ok && prev.ev.State == ev.State && prev.ev.Text == ev.Text && prev.ev.Detail == ev.Detail &&
		(prev.ev.Current == ev.Current || time.Since(prev.at) < jsonEvery && ev.Current != ev.Total) {
		return
	}
	w.last[ev.key()] = jsonSent{ev, time.Now()}
	_ = w.enc.Encode(ev)
}

func (w *jsonWriter) Close() error { return nil }
