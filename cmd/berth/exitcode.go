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
// own code through), and the error to print, if any.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

// exitCode is the one place where error classes become exit codes.
func exitCode(ctx context.Context, stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "berth:", compose.Message(ee.err))
		}
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
