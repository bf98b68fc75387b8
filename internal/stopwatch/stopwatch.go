// Package stopwatch logs how long each phase of an operation took, at debug
// level, so "where does the time go" has an answer without a profiler.
package stopwatch

import (
	"context"
	"log/slog"
	"time"
)

// Watch times consecutive phases of one operation.
type Watch struct {
	ctx   context.Context
	op    string
	start time.Time
	last  time.Time
	attrs []any
}

// Start begins timing op; attrs are added to every line.
func Start(ctx context.Context, op string, attrs ...any) *Watch {
	now := time.Now()
	return &Watch{ctx: ctx, op: op, start: now, last: now, attrs: attrs}
}

// Lap logs the time since the previous lap under the phase's name.
func (w *Watch) Lap(phase string) {
	if !slog.Default().Enabled(w.ctx, slog.LevelDebug) {
		return
	}
	now := time.Now()
	slog.DebugContext(w.ctx, w.op, append([]any{"phase", phase, "ms", float64(now.Sub(w.last).Microseconds()) / 1000}, w.attrs...)...)
	w.last = now
}

// Done logs the total.
func (w *Watch) Done() {
	if !slog.Default().Enabled(w.ctx, slog.LevelDebug) {
		return
	}
	slog.DebugContext(w.ctx, w.op, append([]any{"phase", "total", "ms", float64(time.Since(w.start).Microseconds()) / 1000}, w.attrs...)...)
}
