package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/fswatch"
)

// Event actions, Docker's names for a container's changes.
const (
	ActionCreate  = "create"
	ActionStart   = "start"
	ActionDie     = "die"
	ActionStop    = "stop"
	ActionPause   = "pause"
	ActionUnpause = "unpause"
	ActionRename  = "rename"
	ActionDestroy = "destroy"
	// ActionHealth is followed by the new health status:
	// "health_status: healthy".
	ActionHealth = "health_status: "
)

// Event is a change of a container's state.
type Event struct {
	Time      time.Time
	Action    string
	Container container.Container // as it was when the event happened
	Status    runtime.Status      // after the change; ExitCode is the exit's for die
}

// seen is what Events last knew of a container.
type seen struct {
	c  container.Container
	st runtime.Status
}

// EventOptions tune Events.
type EventOptions struct {
	// Replay, if not zero, first replays the events the baseline's
	// records and statuses still show from that time on (see replay).
	Replay time.Time
	// Watching, if set, is called once the baseline is taken (and
	// replayed): every later change gives its event.
	Watching func()
}

// Events calls fn for every change of a container's state, as it happens,
// until ctx ends or fn fails: created and removed records, renames, and
// each status the shims record (start, exit, pause, health). The store's
// directories are watched with inotify; the records and statuses that
// exist when Events starts are the baseline and give no event unless
// o.Replay asks for them.
func (e *Engine) Events(ctx context.Context, fn func(Event) error, o EventOptions) error {
	root := e.Containers.Root()
	// Only the record and the status matter; logs and run files change
	// all the time.
	skip := func(p string) bool {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return true
		}
		parts := strings.Split(rel, string(filepath.Separator))
		// A create's staging directory and a removed one are no
		// container's (a container's appears and goes in one rename).
		return strings.HasPrefix(parts[0], ".") ||
			len(parts) > 2 || len(parts) == 2 && parts[1] != "container.json" && parts[1] != "status.json"
	}
	w, err := fswatch.New([]string{root}, skip, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	known := map[string]seen{}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, d := range ents {
		if skip(filepath.Join(root, d.Name())) {
			continue
		}
		if s, ok := e.look(d.Name()); ok {
			known[d.Name()] = s
		}
	}
	if !o.Replay.IsZero() {
		for _, ev := range replay(known, o.Replay) {
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
	if o.Watching != nil {
		o.Watching()
	}
	batches := make(chan []string)
	errc := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- w.Run(wctx, batches) }()
	for {
		select {
		case <-ctx.Done():
			<-errc
			return ctx.Err()
		case err := <-errc:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		case batch := <-batches:
			ids := map[string]bool{}
			for _, p := range batch {
				if rel, err := filepath.Rel(root, p); err == nil {
					ids[strings.Split(rel, string(filepath.Separator))[0]] = true
				}
			}
			for id := range ids {
				if err := e.emit(known, id, fn); err != nil {
					cancel()
					<-errc
					return err
				}
			}
		}
	}
}

// look reads a container's record and status; false when the record is
// gone (or not written yet).
func (e *Engine) look(id string) (seen, bool) {
	var c container.Container
	if err := atomicfile.ReadJSON(filepath.Join(e.Containers.Dir(id), "container.json"), &c); err != nil {
		return seen{}, false
	}
	st, err := runtime.ReadStatus(e.Containers.StatusPath(id))
	if err != nil {
		return seen{}, false
	}
	return seen{c: c, st: st}, true
}

// emit compares a container with what was known of it and reports the
// changes in between.
func (e *Engine) emit(known map[string]seen, id string, fn func(Event) error) error {
	prev, had := known[id]
	cur, ok := e.look(id)
	if !ok {
		if _, err := os.Stat(e.Containers.Dir(id)); had && errors.Is(err, os.ErrNotExist) {
			delete(known, id)
			return fn(Event{Time: time.Now(), Action: ActionDestroy, Container: prev.c, Status: prev.st})
		}
		return nil
	}
	known[id] = cur
	for _, a := range transitions(prev, had, cur) {
		if err := fn(Event{Time: time.Now(), Action: a, Container: cur.c, Status: cur.st}); err != nil {
			return err
		}
	}
	return nil
}

// transitions names the events between two looks at a container, in
// order. Several changes between two looks (a quick restart) still give
// each event once: a new start time means the container ran again.
func transitions(prev seen, had bool, cur seen) []string {
	var out []string
	if !had {
		out = append(out, ActionCreate)
		prev = seen{c: cur.c, st: runtime.Status{State: runtime.StateCreated}}
	}
	if prev.c.Name != cur.c.Name {
		out = append(out, ActionRename)
	}
	alive := func(s runtime.Status) bool { return s.State == runtime.StateRunning || s.State == runtime.StatePaused }
	wasAlive, isAlive := alive(prev.st), alive(cur.st)
	started := !cur.st.StartedAt.IsZero() && !cur.st.StartedAt.Equal(prev.st.StartedAt)
	ended := func() {
		out = append(out, ActionDie)
		if cur.st.StoppedByUser && cur.st.State != runtime.StateRestarting {
			out = append(out, ActionStop)
		}
	}
	if wasAlive && (started || !isAlive) {
		if started {
			out = append(out, ActionDie) // the run before this one
		} else {
			ended()
		}
	}
	if started {
		out = append(out, ActionStart)
		if !isAlive {
			ended()
		}
	}
	switch {
	case isAlive && cur.st.State == runtime.StatePaused && prev.st.State != runtime.StatePaused:
		out = append(out, ActionPause)
	case isAlive && !started && cur.st.State == runtime.StateRunning && prev.st.State == runtime.StatePaused:
		out = append(out, ActionUnpause)
	}
	if h := cur.st.HealthStatus(); h != prev.st.HealthStatus() && (h == runtime.HealthHealthy || h == runtime.HealthUnhealthy) {
		out = append(out, ActionHealth+h)
	}
	return out
}

// replay is the events the containers' records and statuses still show
// from since on, oldest first: each one's creation, its last start, and
// the end of that run (die, and stop when a command stopped it). Earlier
// runs, pauses, health changes, renames and removed containers leave no
// trace in the state, so they are not replayed.
func replay(known map[string]seen, since time.Time) []Event {
	var out []Event
	add := func(t time.Time, action string, s seen) {
		if !t.IsZero() && !t.Before(since) {
			out = append(out, Event{Time: t, Action: action, Container: s.c, Status: s.st})
		}
	}
	for _, s := range known {
		add(s.c.Created, ActionCreate, s)
		add(s.st.StartedAt, ActionStart, s)
		if !s.st.Up() && s.st.FinishedAt.After(s.st.StartedAt) && !s.st.StartedAt.IsZero() {
			add(s.st.FinishedAt, ActionDie, s)
			if s.st.StoppedByUser {
				add(s.st.FinishedAt, ActionStop, s)
			}
		}
	}
	// Stable, so a stop stays after its die.
	slices.SortStableFunc(out, func(a, b Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Container.ID, b.Container.ID)
	})
	return out
}
