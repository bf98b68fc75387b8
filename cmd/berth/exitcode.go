package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
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
	fmt.Fprintln(stderr, "berth:", message(err))
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

// classes are the error classes whose names end wrapped messages; the user
// needs the sentence, not the class, so message drops that ending.
var classes = []error{
	errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrAlreadyExists,
	errdefs.ErrFailedPrecondition, errdefs.ErrConflict, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented, errdefs.ErrUnknown,
}

func message(err error) string {
	msg := err.Error()
	for _, c := range classes {
		if errors.Is(err, c) {
			msg = strings.TrimSuffix(msg, ": "+c.Error())
		}
	}
	return msg
}
