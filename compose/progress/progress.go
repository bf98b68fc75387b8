// Package progress shows what a command is doing to its resources (images,
// layers, containers, networks, volumes): bars on a terminal, one line per
// change otherwise, JSON lines for machines, or nothing.
package progress

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/mattn/go-isatty"
)

// State is where a resource stands.
type State int

const (
	// Waiting: known but not started (a layer queued behind others).
	Waiting State = iota
	// Working: in progress (downloading, creating, stopping).
	Working
	// Done: finished well.
	Done
	// Warning: finished, with something the user should read in Detail.
	Warning
	// Error: failed; Detail says why.
	Error
)

func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Working:
		return "working"
	case Done:
		return "done"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText writes the state's name, for --progress json.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Event reports one resource's new state. Resources are named by ID; an
// event with a Parent is shown under (after) its parent, as a layer is
// under its image. Current and Total are bytes: with Total > 0 a terminal
// shows a bar, with Total == 0 a count of Current alone.
type Event struct {
	ID      string `json:"id"`
	Parent  string `json:"parent,omitempty"`
	State   State  `json:"state"`
	Text    string `json:"text"`             // what happens, Docker's words: "Downloading", "Pulled", "Started"
	Detail  string `json:"detail,omitempty"` // an error's sentence, a warning
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// key names a resource in its display: a layer shared by two images being
// pulled at once is two lines, one under each.
func (e Event) key() string { return e.Parent + "\x00" + e.ID }

// Writer shows events. Event is safe for concurrent use; Close stops the
// display (a terminal's last frame stays) and must be called once.
type Writer interface {
	Event(Event)
	Close() error
}

// Mode chooses a Writer's form.
type Mode string

// The modes of --progress, as docker compose names them.
const (
	Auto  Mode = "auto"
	TTY   Mode = "tty"
	Plain Mode = "plain"
	Quiet Mode = "quiet"
	JSON  Mode = "json"
)

// Modes lists the accepted values of --progress.
var Modes = []Mode{Auto, TTY, Plain, Quiet, JSON}

// ParseMode checks a --progress value; "" means auto.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return Auto, nil
	}
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("progress %q: want one of %s: %w", s, strings.Join(names, ", "), errdefs.ErrInvalidArgument)
}

// New returns a Writer of the given mode writing to out. Auto is tty when out
// is a terminal and plain otherwise.
func New(out io.Writer, mode Mode) Writer {
	if mode == Auto || mode == "" {
		mode = Plain
		if isTerminal(out) {
			mode = TTY
		}
	}
	switch mode {
	case TTY:
		return newTTY(out)
	case JSON:
		return newJSON(out)
	case Quiet:
		return Discard
	}
	return newPlain(out)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Discard shows nothing.
var Discard Writer = discard{}

type discard struct{}

func (discard) Event(Event)  {}
func (discard) Close() error { return nil }

type ctxKey struct{}

// WithWriter returns a context whose calls report to w.
func WithWriter(ctx context.Context, w Writer) context.Context {
	return context.WithValue(ctx, ctxKey{}, w)
}

// FromContext returns the context's Writer, or Discard.
func FromContext(ctx context.Context) Writer {
	if w, ok := ctx.Value(ctxKey{}).(Writer); ok {
		return w
	}
	return Discard
}
