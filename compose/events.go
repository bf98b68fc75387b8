package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
)

// Event is one line of berth events: a change of one of the project's
// containers, with docker compose events' JSON names.
type Event struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`
	Service    string            `json:"service"`
	ID         string            `json:"id"`
	Action     string            `json:"action"`
	Attributes map[string]string `json:"attributes"`
}

// String is the event as docker compose events prints it without --json.
func (ev Event) String() string {
	attrs := make([]string, 0, len(ev.Attributes))
	for _, k := range slices.Sorted(maps.Keys(ev.Attributes)) {
		attrs = append(attrs, k+"="+ev.Attributes[k])
	}
	return fmt.Sprintf("%s %s %s %s (%s)", ev.Time.Format("2006-01-02 15:04:05.000000"), ev.Type, ev.Action, ev.ID, strings.Join(attrs, ", "))
}

// EventOptions bound the events shown by their time (zero: no bound).
type EventOptions struct {
	// Since replays the changes the containers' state still shows from
	// then on (see engine.EventOptions.Replay) before the live ones.
	Since time.Time
	// Until ends the stream then; one in the past shows only the replay.
	Until time.Time
}

// Events calls fn for each change of the project's containers (one-off
// ones too), or of the named services', until ctx ends or o.Until.
func Events(ctx context.Context, e *engine.Engine, p *types.Project, services []string, o EventOptions, fn func(Event) error) error {
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	if !o.Until.IsZero() {
		if o.Since.IsZero() {
			// docker events --until alone shows what happened before it.
			o.Since = time.Unix(0, 0)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, o.Until, errUntil)
		defer cancel()
	}
	err := e.Events(ctx, func(ev engine.Event) error {
		l := ev.Container.Config.Labels
		if l[LabelProject] != p.Name || len(services) > 0 && !slices.Contains(services, l[LabelService]) ||
			!o.Until.IsZero() && ev.Time.After(o.Until) {
			return nil
		}
		return fn(projectEvent(ev))
	}, engine.EventOptions{Replay: o.Since})
	if errors.Is(context.Cause(ctx), errUntil) {
		return nil
	}
	return err
}

// errUntil ends berth events at --until.
var errUntil = errors.New("until reached")

// projectEvent is an engine event as docker compose shows it: the
// container's labels (less Compose's own) as attributes, with its name,
// image and, when it died, its exit code.
func projectEvent(ev engine.Event) Event {
	attrs := map[string]string{}
	for k, v := range ev.Container.Config.Labels {
		if !strings.HasPrefix(k, "com.docker.compose.") {
			attrs[k] = v
		}
	}
	attrs["name"], attrs["image"] = ev.Container.Name, ev.Container.Config.Image
	if ev.Action == engine.ActionDie {
		attrs["exitCode"] = strconv.Itoa(ev.Status.ExitCode)
	}
	return Event{Time: ev.Time, Type: "container", Service: ev.Container.Config.Labels[LabelService],
		ID: ev.Container.ID, Action: ev.Action, Attributes: attrs}
}
