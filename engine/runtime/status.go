package runtime

import (
	"errors"
	"os"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// States a container moves through, as the shim records them.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting" // between runs, waiting out the backoff
	StateExited     = "exited"
)

// Status is what the shim records about its container: the CLI reads it to
// answer ps without asking the shim. New fields may be added; readers ignore
// what they do not know.
type Status struct {
	State      string    `json:"state"`
	Pid        int       `json:"pid,omitempty"`
	ShimPid    int       `json:"shim_pid,omitempty"`
	ExitCode   int       `json:"exit_code"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// RestartCount is how often the restart policy restarted the container
	// under this shim.
	RestartCount int `json:"restart_count,omitempty"`
	// Error says why the container ended abnormally (start failure, lost
	// shim); empty for a normal exit.
	Error string `json:"error,omitempty"`
}

// Up reports whether the container is up: its process runs, or its shim is
// between two runs of a restart policy.
func (s Status) Up() bool { return s.State == StateRunning || s.State == StateRestarting }

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
