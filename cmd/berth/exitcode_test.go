package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestExitCodeAndMessage(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		code int
		line string
	}{
		{"ok", context.Background(), nil, 0, ""},
		{"class suffix dropped", context.Background(), fmt.Errorf("service %q: image %q not found; import or pull it first: %w", "web", "nope", errdefs.ErrNotFound), 1,
			"berth: service \"web\": image \"nope\" not found; import or pull it first\n"},
		{"not implemented", context.Background(), fmt.Errorf("build: %w", errdefs.ErrNotImplemented), 3, "berth: build\n"},
		{"exec passes its code", context.Background(), exitError{code: 7}, 7, ""},
		{"ctrl-c", cancelled, context.Canceled, 130, ""},
	} {
		var buf bytes.Buffer
		if got := exitCode(tc.ctx, &buf, tc.err); got != tc.code || buf.String() != tc.line {
			t.Errorf("%s: code %d line %q, want %d %q", tc.name, got, buf.String(), tc.code, tc.line)
		}
	}
}
