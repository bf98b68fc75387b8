package compose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// Action is what one step does to one object.
type Action string

// Actions a plan is made of. Each is one engine call (await is a wait on
// one), so apply never decides anything.
const (
	ActCreateNetwork Action = "create-network"
	ActRemoveNetwork Action = "remove-network"
	ActCreateVolume  Action = "create-volume"
	ActRemoveVolume  Action = "remove-volume"
	ActCreate        Action = "create"
	ActStart         Action = "start"
	ActStop          Action = "stop"
	ActKill          Action = "kill"
	ActPause         Action = "pause"
	ActUnpause       Action = "unpause"
	ActRemove        Action = "remove"
	ActRename        Action = "rename"
	// Await waits for a container to reach Condition before its dependents
	// go on.
	ActAwait Action = "await"
)

// Conditions an Await step waits for (depends_on's, by their Compose names).
const (
	ConditionStarted   = types.ServiceConditionStarted
	ConditionHealthy   = types.ServiceConditionHealthy
	ConditionCompleted = types.ServiceConditionCompletedSuccessfully
)

// Step is one action on one object, with why it is done and what must be
// done before it. Steps are numbered from 1 in plan order; After refers to
// those numbers.
type Step struct {
	ID      int
	Action  Action
	Service string // empty for networks and volumes
	Name    string // container, network or volume name; the new name for ActRename
	// Container is the existing container acted on (its ID). Steps on a
	// container the plan itself creates name the Create step in Ref instead.
	Container string
	Ref       int
	From      string // a Rename's current name, when the container exists
	Number    int    // replica number of the container, 0 when not a service container
	Reason    string
	After     []int
	// Timeout bounds the step: a stop's grace period before SIGKILL, an
	// await's patience (0: as long as the command runs).
	Timeout time.Duration
	// Tolerate is an error class (errdefs) that does not fail the plan: the
	// step is reported with TolerateStatus and its dependents go on.
	Tolerate       error
	TolerateStatus string
	// Required is false for an Await on an optional dependency (depends_on
	// required: false): a failure is a warning.
	Required  bool
	Condition types.ServiceDependency `json:"-"`

	// Replaces is the container a Create's container takes the place of
	// (a recreate), so a failed up knows what to give back.
	Replaces string
	// Quiet steps print no progress (the replacement of a recreate is
	// shown once, under its final name, when renamed).
	Quiet bool

	Config  container.Config  // ActCreate
	Labels  map[string]string // ActCreateVolume
	Options map[string]string // ActCreateVolume: the local driver's driver_opts
	Network network.Spec      // ActCreateNetwork
	Signal  string            // ActKill
	// RemoveVolumes makes ActRemove remove the container's anonymous
	// volumes too (down -v, rm -v, up -V).
	RemoveVolumes bool
}

// Object names the kind of object the step acts on, as progress lines do.
func (s Step) Object() string {
	switch s.Action {
	case ActCreateNetwork, ActRemoveNetwork:
		return "Network"
	case ActCreateVolume, ActRemoveVolume:
		return "Volume"
	}
	return "Container"
}

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s: ", s.ID, strings.ToLower(s.Object()), s.Name)
	switch s.Action {
	case ActCreateNetwork, ActCreateVolume:
		b.WriteString("create")
	case ActRemoveNetwork, ActRemoveVolume:
		b.WriteString("remove")
	case ActRename:
		if s.Ref > 0 {
			fmt.Fprintf(&b, "rename from #%d", s.Ref)
		} else {
			fmt.Fprintf(&b, "rename from %s", s.From)
		}
	case ActAwait:
		fmt.Fprintf(&b, "await %s", strings.TrimPrefix(s.Condition.Condition, "service_"))
	case ActKill:
		fmt.Fprintf(&b, "kill %s", s.Signal)
	default:
		b.WriteString(string(s.Action))
	}
	if s.Reason != "" {
		fmt.Fprintf(&b, " (%s)", s.Reason)
	}
	if len(s.After) > 0 {
		ids := make([]string, len(s.After))
		for i, a := range s.After {
			ids[i] = "#" + strconv.Itoa(a)
		}
		fmt.Fprintf(&b, " after %s", strings.Join(ids, ","))
	}
	return b.String()
}

// Plan is a graph of steps: each runs as soon as the steps it comes After
// are done. Steps are listed in an order where every step comes after its
// dependencies, and their text is stable, so tests assert on String.
type Plan struct {
	Steps    []Step
	Warnings []string
	// KeepGoing makes apply carry on past a failed step with every step
	// that does not depend on it (down removes all it can).
	KeepGoing bool
}

// String renders the plan, one step a line; tests assert on it, and
// --dry-run and --explain print it.
func (p Plan) String() string {
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// add appends a step, numbers it and returns its number. Dependencies of 0
// (no step) are dropped, so callers can pass "the step that made this, if
// any" without checking.
func (p *Plan) add(s Step) int {
	s.ID = len(p.Steps) + 1
	var after []int
	for _, a := range s.After {
		if a > 0 && !slices.Contains(after, a) {
			after = append(after, a)
		}
	}
	slices.Sort(after)
	s.After = after
	p.Steps = append(p.Steps, s)
	return s.ID
}

// defaultStopGrace is Docker's grace period between the stop signal and
// SIGKILL when neither the service nor -t says otherwise.
const defaultStopGrace = 10 * time.Second

// stopGrace decides a stop's grace period: -t wins, then the container's
// own stop_grace_period, then Docker's default.
func stopGrace(override *time.Duration, own time.Duration) time.Duration {
	switch {
	case override != nil:
		return *override
	case own > 0:
		return own
	}
	return defaultStopGrace
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
