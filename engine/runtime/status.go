package runtime

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/docker/go-units"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// State is where a container is in its life, as the shim records it.
type State string

// States a container moves through. Docker's names, so they read the same
// in ps output and its JSON.
const (
	StateCreated    State = "created"
	StateRunning    State = "running"
	StatePaused     State = "paused"
	StateRestarting State = "restarting" // between runs, waiting out the backoff
	StateExited     State = "exited"
	// StateDead is a container whose shim was lost and whose remains could
	// not be cleaned up; the next command that takes its lock tries again.
	StateDead State = "dead"
)

// Health states, Docker's names.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is the healthcheck's verdict and its last results.
type Health struct {
	Status        string        `json:"status"` // starting, healthy, unhealthy
	FailingStreak int           `json:"failing_streak"`
	Log           []HealthProbe `json:"log,omitempty"` // the last five, oldest first
}

// HealthProbe is one run of the healthcheck.
type HealthProbe struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// Status is what the shim records about its container: the CLI reads it to
// answer ps without asking the shim. New fields may be added; readers ignore
// what they do not know.
type Status struct {
	State      State     `json:"state"`
	Pid        int       `json:"pid,omitempty"`
	ShimPid    int       `json:"shim_pid,omitempty"`
	ExitCode   int       `json:"exit_code"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// RestartCount is how often the restart policy restarted the container
	// under this shim.
	RestartCount int `json:"restart_count,omitempty"`
	// OOMKilled says the kernel's OOM killer killed a process of the
	// container's last run (its memory limit was hit), as Docker's state does.
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Error says why the container ended abnormally (start failure, lost
	// shim); empty for a normal exit.
	Error string `json:"error,omitempty"`
	// Health is set when the container has a healthcheck.
	Health *Health `json:"health,omitempty"`
	// StoppedByUser records a stop or kill asked for by a command: a
	// container with restart unless-stopped then stays down after a reboot.
	StoppedByUser bool `json:"stopped_by_user,omitempty"`
	// LogError is the last failure to write the log (a full disk, say),
	// cleared once writing works again; output meanwhile is dropped.
	LogError string `json:"log_error,omitempty"`
	// Protocol is the version of the task protocol the shim speaks.
	Protocol int `json:"protocol,omitempty"`
}

// Up reports whether the container is up: its process runs (paused or
// not), or its shim is between two runs of a restart policy.
func (s Status) Up() bool {
	return s.State == StateRunning || s.State == StatePaused || s.State == StateRestarting
}

// HealthStatus is the health state, or "" without a healthcheck.
func (s Status) HealthStatus() string {
	if s.Health == nil {
		return ""
	}
	return s.Health.Status
}

// Describe renders the status as Docker's STATUS column does, relative to
// now: "Up 3 seconds (healthy)", "Up 2 minutes (Paused)", "Exited (0) 2
// seconds ago", "Restarting (1) 5 seconds ago", "Created", "Dead".
func (s Status) Describe(now time.Time) string {
	switch s.State {
	case StateRunning, StatePaused:
		out := "Up " + units.HumanDuration(now.Sub(s.StartedAt))
		if s.State == StatePaused {
			return out + " (Paused)"
		}
		switch h := s.HealthStatus(); h {
		case HealthStarting:
			out += " (health: starting)"
		case HealthHealthy, HealthUnhealthy:
			out += " (" + h + ")"
		}
		return out
	case StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case StateDead:
		return "Dead"
	}
	return "Created"
}

// ReadStatus reads a status record; a missing file is a created container.
func ReadStatus(path string) (Status, error) {
	var s Status
	err := atomicfile.ReadJSON(path, &s)
	if errors.Is(err, os.ErrNotExist) {
		return Status{State: StateCreated}, nil
	}
	return s, err
}

// WriteStatus writes a status record atomically.
func WriteStatus(path string, s Status) error {
	return atomicfile.WriteJSON(path, s, 0o600)
}
