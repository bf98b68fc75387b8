package main

import (
	"errors"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestParseLogTime(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2013-01-02T13:23:37Z", time.Date(2013, 1, 2, 13, 23, 37, 0, time.UTC)},
		{"2013-01-02T13:23:37.5+01:00", time.Date(2013, 1, 2, 12, 23, 37, 5e8, time.UTC)},
		{"2013-01-02T13:23:37", time.Date(2013, 1, 2, 13, 23, 37, 0, time.Local)},
		{"2013-01-02", time.Date(2013, 1, 2, 0, 0, 0, 0, time.Local)},
		{"1357133017", time.Unix(1357133017, 0)},
		{"1357133017.25", time.Unix(1357133017, 25e7)},
	} {
		got, err := parseTimeFlag("since", tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	got, err := parseTimeFlag("since", "42m")
	if d := now.Add(-42 * time.Minute).Sub(got); err != nil || d > time.Second || d < -time.Second {
		t.Errorf("42m: %v %v", got, err)
	}
	if _, err := parseTimeFlag("until", "yesterday"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("yesterday: %v", err)
	}
}
