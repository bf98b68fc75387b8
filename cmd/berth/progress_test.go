package main

import (
	"testing"

	"github.com/berth-dev/berth/compose/progress"
)

// --progress is read with --ansi as docker compose reads it.
func TestProgressMode(t *testing.T) {
	for _, tc := range []struct {
		progress, ansi string
		want           progress.Mode
		err            bool
	}{
		{"auto", "auto", progress.Auto, false},
		{"", "auto", progress.Auto, false},
		{"auto", "never", progress.Plain, false},
		{"tty", "always", progress.TTY, false},
		{"tty", "never", "", true},
		{"plain", "always", "", true},
		{"plain", "never", progress.Plain, false},
		{"quiet", "auto", progress.Quiet, false},
		{"none", "auto", progress.Quiet, false},
		{"json", "never", progress.JSON, false},
		{"fancy", "auto", "", true},
	} {
		f := projectFlags{progress: tc.progress, ansi: tc.ansi}
		got, err := f.progressMode()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("--progress %q --ansi %q: %q, %v", tc.progress, tc.ansi, got, err)
		}
	}
}
