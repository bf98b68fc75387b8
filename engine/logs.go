package engine

import (
	"context"

	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/engine/runtime"
)

// LogOptions select a container's log entries.
type LogOptions struct {
	Tail   int  // <0: all
	Follow bool // until the container stops
}

// Logs calls fn for each log entry of the container.
func (e *Engine) Logs(ctx context.Context, id string, o LogOptions, fn func(jsonlog.Entry) error) error {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return err
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
