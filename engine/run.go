package engine

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
)

// applyRun gives the spec what the container's Run asks of its process: a
// terminal (with TERM set, as Docker sets it).
func applyRun(spec *specs.Spec, r container.Run) {
	if !r.TTY {
		return
	}
	spec.Process.Terminal = true
	if !hasEnv(spec.Process.Env, "TERM") {
		spec.Process.Env = append(spec.Process.Env, "TERM=xterm")
	}
}
