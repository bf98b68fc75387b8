package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

func TestTransitions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	c := container.Container{Name: "p-web-1"}
	st := func(s runtime.State, started time.Time, health string, byUser bool) seen {
		v := seen{c: c, st: runtime.Status{State: s, StartedAt: started, StoppedByUser: byUser}}
		if health != "" {
			v.st.Health = &runtime.Health{Status: health}
		}
		return v
	}
	renamed := st(runtime.StateRunning, t0, "", false)
	renamed.c.Name = "p-web-1-old"
	for _, tc := range []struct {
		name string
		prev seen
		had  bool
		cur  seen
		want []string
	}{
		{"created", seen{}, false, st(runtime.StateCreated, time.Time{}, "", false), []string{"create"}},
		{"created and started before the first look", seen{}, false, st(runtime.StateRunning, t0, "", false), []string{"create", "start"}},
		{"started", st(runtime.StateCreated, time.Time{}, "", false), true, st(runtime.StateRunning, t0, "", false), []string{"start"}},
		{"exited", st(runtime.StateRunning, t0, "", false), true, st(runtime.StateExited, t0, "", false), []string{"die"}},
		{"stopped", st(runtime.StateRunning, t0, "", false), true, st(runtime.StateExited, t0, "", true), []string{"die", "stop"}},
		{"restart policy waits", st(runtime.StateRunning, t0, "", false), true, st(runtime.StateRestarting, t0, "", false), []string{"die"}},
		{"restarted between two looks", st(runtime.StateRunning, t0, "", false), true, st(runtime.StateRunning, t1, "", false), []string{"die", "start"}},
		{"ran and exited between two looks", st(runtime.StateExited, t0, "", false), true, st(runtime.StateExited, t1, "", false), []string{"start", "die"}},
		{"paused", st(runtime.StateRunning, t0, "", false), true, st(runtime.StatePaused, t0, "", false), []string{"pause"}},
		{"unpaused", st(runtime.StatePaused, t0, "", false), true, st(runtime.StateRunning, t0, "", false), []string{"unpause"}},
		{"healthy", st(runtime.StateRunning, t0, "starting", false), true, st(runtime.StateRunning, t0, "healthy", false), []string{"health_status: healthy"}},
		{"a probe that changes nothing", st(runtime.StateRunning, t0, "healthy", false), true, st(runtime.StateRunning, t0, "healthy", false), nil},
		{"renamed", renamed, true, st(runtime.StateRunning, t0, "", false), []string{"rename"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transitions(tc.prev, tc.had, tc.cur); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	known := map[string]seen{
		"a": {c: container.Container{ID: "a", Created: at(0)}, st: runtime.Status{State: runtime.StateRunning, StartedAt: at(2)}},
		"b": {c: container.Container{ID: "b", Created: at(1)}, st: runtime.Status{State: runtime.StateExited, StartedAt: at(3), FinishedAt: at(5), StoppedByUser: true, ExitCode: 137}},
		"c": {c: container.Container{ID: "c", Created: at(4)}, st: runtime.Status{State: runtime.StateCreated}},
		"d": {c: container.Container{ID: "d", Created: at(6)}, st: runtime.Status{State: runtime.StateRestarting, StartedAt: at(7), FinishedAt: at(8)}},
	}
	var got []string
	for _, ev := range replay(known, at(1)) {
		got = append(got, fmt.Sprintf("%s %s %d", ev.Container.ID, ev.Action, ev.Time.Sub(t0)/time.Second))
	}
	want := []string{"b create 1", "a start 2", "b start 3", "c create 4", "b die 5", "b stop 5", "d create 6", "d start 7"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
