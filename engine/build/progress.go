package build

import (
	"fmt"
	"time"
)

// StepState is where a build step stands.
type StepState int

// Step states.
const (
	StepStarted StepState = iota
	StepCached            // answered from the cache
	StepDone
	StepFailed
	StepLog // a line of a RUN step's output
)

// Event reports a step of a build, in BuildKit's terms: "#3 [web 2/5] RUN
// make" is step 3 of the build, the second of five of its stage.
type Event struct {
	Build    string // who builds (Options.Name)
	Step     int    // "#N", across the whole build
	Stage    string // the stage's name; "" for an unnamed last stage
	Index    int    // within the stage, from 1 (FROM)
	Total    int    // steps of the stage
	Text     string // the instruction
	State    StepState
	Line     string        // with StepLog
	Err      error         // with StepFailed
	Duration time.Duration // with StepDone
}

// Name is the step's name as BuildKit shows it: "[web builder 2/5] RUN make".
func (e Event) Name() string {
	prefix := e.Build
	if e.Stage != "" {
		if prefix != "" {
			prefix += " "
		}
		prefix += e.Stage
	}
	if prefix != "" {
		prefix += " "
	}
	return fmt.Sprintf("[%s%d/%d] %s", prefix, e.Index, e.Total, e.Text)
}
