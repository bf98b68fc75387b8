package engine

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

func TestBackAtBootFollowsDockersRestartPolicies(t *testing.T) {
	t.Parallel()
	ran := time.Now()
	for _, tc := range []struct {
		restart string
		st      runtime.Status
		want    bool
	}{
		{"always", runtime.Status{StartedAt: ran}, true},
		{"always", runtime.Status{StartedAt: ran, StoppedByUser: true}, true}, // Docker brings it back when its daemon starts
		{"unless-stopped", runtime.Status{StartedAt: ran}, true},
		{"unless-stopped", runtime.Status{StartedAt: ran, StoppedByUser: true}, false},
		{"on-failure", runtime.Status{StartedAt: ran, ExitCode: 137}, false},
		{"no", runtime.Status{StartedAt: ran}, false},
		{"", runtime.Status{StartedAt: ran}, false},
		{"always", runtime.Status{}, false}, // created, never started
	} {
		c := container.Container{Config: container.Config{Restart: tc.restart}}
		if got := BackAtBoot(c, tc.st); got != tc.want {
			t.Errorf("restart %q, %+v: %v, want %v", tc.restart, tc.st, got, tc.want)
		}
	}
}
