package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose"
)

// exitError carries an exit code chosen by a verb (exec passes the process's
// own code through) with no message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode is the one place where error classes become exit codes.
func exitCode(ctx context.Context, stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return 130
	}
	fmt.Fprintln(stderr, "berth:", compose.Message(err))
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrNotFound):
		return 1
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return 1
	case errors.Is(err, errdefs.ErrNotImplemented):
		return 3
	}
	return 1
}
