package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer"

	"github.com/berth-dev/berth/engine/container"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args       []string
	Env        []string // added to the container's environment
	User       string   // empty: the container's user
	WorkingDir string   // empty: the container's working directory
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// Exec runs a process inside a running container's namespaces and cgroup
// and returns its exit code. This process is its parent, so it can wait.
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
	c, err := libcontainer.Load(e.libcontainerRoot(), info.ID)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", info.Name, err)
	}
	user := o.User
	if user == "" {
		user = info.Config.User
	}
	uid, gid, groups, err := container.ResolveUser(e.rootfsDir(info.ID), user)
	if err != nil {
		return -1, err
	}
	cwd := o.WorkingDir
	if cwd == "" {
		cwd = info.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	p := &libcontainer.Process{
		Args:   o.Args,
		Env:    mergeEnv(append([]string(nil), info.Config.Env...), o.Env),
		Cwd:    cwd,
		UID:    int(uid),
		GID:    int(gid),
		Stdin:  o.Stdin,
		Stdout: o.Stdout,
		Stderr: o.Stderr,
	}
	for _, g := range groups {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	if err := c.Run(p); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", info.Name, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Signal(syscall.SIGKILL) })
	defer stop()
	ps, err := p.Wait()
	if ps == nil {
		var ee *os.SyscallError
		if errors.As(err, &ee) {
			return -1, err
		}
		return -1, fmt.Errorf("exec in %s: %w", info.Name, err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}
