package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// restartPolicy is a parsed Compose restart policy.
type restartPolicy struct {
	mode string // "no", "always", "on-failure"
	max  int    // on-failure: at most this many restarts; 0 = no limit
}

func parseRestart(s string) (restartPolicy, error) {
	switch s {
	case "", "no":
		return restartPolicy{mode: "no"}, nil
	case "always", "unless-stopped":
		// Without a daemon nothing runs at boot, so the two differ only in
		// what Docker does after a reboot.
		return restartPolicy{mode: "always"}, nil
	case "on-failure":
		return restartPolicy{mode: "on-failure"}, nil
	}
	if n, ok := strings.CutPrefix(s, "on-failure:"); ok {
		if max, err := strconv.Atoi(n); err == nil && max >= 0 {
			return restartPolicy{mode: "on-failure", max: max}, nil
		}
	}
	return restartPolicy{}, fmt.Errorf("restart policy %q: want no, always, unless-stopped or on-failure[:N]: %w", s, errdefs.ErrInvalidArgument)
}

// restarts says whether a run that ended with code, after restarts so far,
// is restarted.
func (p restartPolicy) restarts(code, restarts int) bool {
	switch p.mode {
	case "always":
		return true
	case "on-failure":
		return code != 0 && (p.max == 0 || restarts < p.max)
	}
	return false
}

// restartBackoff spaces restarts as Docker does: 100 ms, doubling each time
// up to a minute, back to the start after a run that lasted 10 s.
type restartBackoff struct{ delay time.Duration }

func (b *restartBackoff) next(ran time.Duration) time.Duration {
	switch {
	case ran >= 10*time.Second || b.delay == 0:
		b.delay = 100 * time.Millisecond
	default:
		b.delay = min(2*b.delay, time.Minute)
	}
	return b.delay
}

// CheckRestart validates a restart policy before anything is created.
func CheckRestart(s string) error {
	_, err := parseRestart(s)
	return err
}
