package engine

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/engine/runtime"
)

// LogOptions select a container's log entries.
type LogOptions struct {
	Tail   int  // <0: all
	Follow bool // until the container stops
}

// ErrNoLog is the answer of Logs for a container whose output is not kept
// (logging driver none), in Docker's words.
var ErrNoLog = fmt.Errorf("configured logging driver does not support reading: %w", errdefs.ErrFailedPrecondition)

// Logs calls fn for each log entry of the container, across its rotated
// files; following goes on across rotations and the restart policy's
// restarts, until the container stops.
func (e *Engine) Logs(ctx context.Context, id string, o LogOptions, fn func(jsonlog.Entry) error) error {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return err
	}
	if !c.Config.Run.Log.Kept() {
		return ErrNoLog
	}
	statusPath := e.Containers.StatusPath(c.ID)
	return jsonlog.Read(ctx, e.Containers.LogPath(c.ID), jsonlog.ReadOptions{
		Tail:   o.Tail,
		Follow: o.Follow,
		Done: func() bool {
			st, err := runtime.ReadStatus(statusPath)
			// A restart policy keeps the log going across runs.
			return err != nil || !st.Up() || !e.shimLive(c.ID)
		},
	}, fn)
}
