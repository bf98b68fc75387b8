package runtime

import (
	"errors"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		code, n  int
		restarts bool
	}{
		{"", 1, 0, false},
		{"no", 1, 0, false},
		{"always", 0, 100, true},
		{"unless-stopped", 0, 5, true},
		{"on-failure", 0, 0, false},
		{"on-failure", 1, 50, true},
		{"on-failure:2", 1, 1, true},
		{"on-failure:2", 1, 2, false},
		{"on-failure:2", 0, 0, false},
	} {
		p, err := parseRestart(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := p.restarts(tc.code, tc.n); got != tc.restarts {
			t.Errorf("%q code %d after %d restarts: %v", tc.in, tc.code, tc.n, got)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:x", "on-failure:-1"} {
		if _, err := parseRestart(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRestartBackoff(t *testing.T) {
	t.Parallel()
	var b restartBackoff
	var got []time.Duration
	for range 12 {
		got = append(got, b.next(time.Millisecond))
	}
	if got[0] != 100*time.Millisecond || got[1] != 200*time.Millisecond || got[3] != 800*time.Millisecond || got[11] != time.Minute {
		t.Fatalf("backoff %v", got)
	}
	if d := b.next(11 * time.Second); d != 100*time.Millisecond {
		t.Fatalf("after a long run: %v", d)
	}
}
