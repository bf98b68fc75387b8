package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// parseTail reads --tail: "all" or a count.
func parseTail(s string) (int, error) {
	if s == "all" || s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--tail %q: want a number or \"all\": %w", s, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// parseTimeFlag reads --since and --until as docker logs and events do: a time
// (RFC 3339, with or without a zone or seconds, or a date), a Unix time
// in seconds (with a fraction), or a duration back from now ("42m").
func parseTimeFlag(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") {
		whole := int64(secs)
		return time.Unix(whole, int64((secs-float64(whole))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: want a time (2013-01-02T13:23:37Z), a Unix time or a duration (42m): %w", flag, s, errdefs.ErrInvalidArgument)
}
