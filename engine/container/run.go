package container

import "github.com/berth-dev/berth/engine/runtime"

// Run is how the container's shim runs its main process: the healthcheck
// it probes, the terminal and input it keeps, where its output goes.
type Run struct {
	Healthcheck *runtime.HealthConfig `json:"healthcheck,omitempty"`
	TTY         bool                  `json:"tty,omitempty"`        // a pseudo-terminal (tty)
	OpenStdin   bool                  `json:"open_stdin,omitempty"` // input kept open for attach (stdin_open)
	Log         runtime.LogConfig     `json:"log,omitzero"`
}
