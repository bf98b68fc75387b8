package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args       []string
	Env        []string // added to the container's environment
	User       string   // empty: the container's user
	WorkingDir string   // empty: the container's working directory
	TTY        bool     // a pseudo-terminal: its one output goes to Stdout
	Detach     bool     // start it and return; its output is dropped
	Privileged bool     // every capability
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// ConsoleSize is the terminal's size at the start, Resize its changes.
	ConsoleSize *runtime.WindowSize
	Resize      <-chan runtime.WindowSize
	// DetachKeys read from Stdin leave the process running and return
	// runtime.ErrDetached.
	DetachKeys []byte
}

// Exit codes of an exec whose command cannot run, as Docker gives them.
const (
	ExitCannotRun = 126 // found but may not be executed
	ExitNotFound  = 127 // no such command
)

// Exec runs a process inside a running container's namespaces and cgroup,
// as a child of the container's shim (so it outlives this command), and
// returns its exit code. A command that cannot run returns ExitNotFound or
// ExitCannotRun with the error saying why.
func (e *Engine) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return -1, err
	}
	if !info.Running() {
		return -1, fmt.Errorf("container %s is not running: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	if len(o.Args) == 0 {
		return -1, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	spec := runtime.ExecSpec{
		Args: o.Args, Env: o.Env, WorkingDir: o.WorkingDir,
		TTY: o.TTY, Detach: o.Detach, Privileged: o.Privileged,
	}
	if o.User != "" {
		uid, gid, groups, err := container.ResolveUser(e.rootfsDir(info.ID), o.User)
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", info.Name, err)
		}
		spec.User = &runtime.User{UID: uid, GID: gid, AdditionalGids: groups}
	}
	stdio := runtime.Stdio{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Resize: o.Resize, DetachKeys: o.DetachKeys}
	code, err := runtime.Exec(ctx, e.shimSocket(info.ID), spec, stdio, o.ConsoleSize)
	switch {
	case errdefs.IsNotFound(err):
		return ExitNotFound, fmt.Errorf("exec in %s: %w", info.Name, err)
	case errdefs.IsPermissionDenied(err):
		return ExitCannotRun, fmt.Errorf("exec in %s: %w", info.Name, err)
	case err != nil:
		return -1, fmt.Errorf("exec in %s: %w", info.Name, err)
	}
	return code, nil
}
