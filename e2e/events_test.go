package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startEvents runs berth events with args and returns once it watches
// the state directory (its inotify descriptor has a watch), so no later
// change is missed.
func (e *env) startEvents(out *lockedBuffer, args ...string) *exec.Cmd {
	e.t.Helper()
	c := e.cmd(e.t.Context(), append([]string{"events"}, args...)...)
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	eventually(e.t.(*testing.T), 20*time.Second, func() error {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", c.Process.Pid))
		for _, fd := range fds {
			if b, err := os.ReadFile(fd); err == nil && strings.Contains(string(b), "inotify wd:") {
				return nil
			}
		}
		return fmt.Errorf("berth events does not watch yet: %s", out.String())
	})
	return c
}

// TestEventsMustStreamEachContainerChange: berth events --json prints one
// object per change of the project's containers (create, start, health,
// pause, unpause, die with the exit code, stop, destroy), in order, with
// Compose's names; given a service, only its containers; Ctrl-C ends it.
func TestEventsMustStreamEachContainerChange(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: ev
services:
  web:
    image: busybox
    command: [sleep, '3600']
    labels: {tier: front}
    healthcheck: {test: [CMD, 'true'], interval: 200ms}
  other: {image: busybox, command: [sleep, '3600']}
`})
	e.downAtEnd("ev")
	var all, web lockedBuffer
	cmd := e.startEvents(&all, "--json")
	e.startEvents(&web, "web")

	e.must("up", "-d", "--wait")
	e.must("pause", "web")
	e.must("unpause", "web")
	e.must("stop", "-t", "1", "web")
	e.must("down", "-t", "1")
	type event struct {
		Time       time.Time
		Type       string
		Service    string
		ID         string
		Action     string
		Attributes map[string]string
	}
	var events []event
	eventually(t, 20*time.Second, func() error {
		events = nil
		for _, line := range strings.Split(strings.TrimSpace(all.String()), "\n") {
			var ev event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				return fmt.Errorf("%q: %v", line, err)
			}
			events = append(events, ev)
		}
		if n := len(events); n == 0 || events[n-1].Action != "destroy" || strings.Count(all.String(), `"destroy"`) < 2 {
			return fmt.Errorf("waiting for both destroys:\n%s", all.String())
		}
		return nil
	})
	actions := map[string][]string{}
	for _, ev := range events {
		if ev.Type != "container" || len(ev.ID) != 64 || ev.Time.IsZero() || ev.Attributes["name"] != "ev-"+ev.Service+"-1" || ev.Attributes["image"] != "busybox" {
			t.Errorf("event %+v", ev)
		}
		if ev.Action == "die" && ev.Service == "web" && ev.Attributes["exitCode"] != "137" {
			t.Errorf("web's die: %+v", ev)
		}
		if ev.Service == "web" && ev.Attributes["tier"] != "front" {
			t.Errorf("web's event lacks its label: %+v", ev)
		}
		actions[ev.Service] = append(actions[ev.Service], ev.Action)
	}
	if want := []string{"create", "start", "health_status: healthy", "pause", "unpause", "die", "stop", "destroy"}; !slices.Equal(actions["web"], want) {
		t.Errorf("web: %q, want %q\n%s", actions["web"], want, all.String())
	}
	if want := []string{"create", "start", "die", "stop", "destroy"}; !slices.Equal(actions["other"], want) {
		t.Errorf("other: %q, want %q\n%s", actions["other"], want, all.String())
	}

	text := web.String()
	if strings.Contains(text, "ev-other-1") || !strings.Contains(text, " container health_status: healthy ") ||
		!strings.Contains(text, "(exitCode=137, image=busybox, name=ev-web-1, tier=front)") {
		t.Errorf("berth events web:\n%s", text)
	}

	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("berth events did not end on SIGINT")
	}
}

// TestEventsMustReplaySinceAndEndAtUntil: --since replays the changes the
// containers' state still shows (creation, last start, its end) from that
// time on, oldest first, then streams; --until ends the stream then, and
// one in the past shows only what happened before it.
func TestEventsMustReplaySinceAndEndAtUntil(t *testing.T) {
	e := upPair(t, "evs")
	e.must("stop", "-t", "1", "b")
	type event struct {
		Time    time.Time
		Service string
		Action  string
	}
	parse := func(out string) (evs []event) {
		t.Helper()
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	actions := func(evs []event) (out []string) {
		for _, ev := range evs {
			out = append(out, ev.Service+" "+ev.Action)
		}
		return out
	}
	past := parse(e.must("events", "--json", "--since", "1h", "--until", "0s").stdout)
	var ofA, ofB []string
	for _, a := range actions(past) {
		if strings.HasPrefix(a, "a ") {
			ofA = append(ofA, a)
		} else {
			ofB = append(ofB, a)
		}
	}
	if !slices.Equal(ofA, []string{"a create", "a start"}) || !slices.Equal(ofB, []string{"b create", "b start", "b die", "b stop"}) {
		t.Fatalf("events --since 1h --until 0s: %q", actions(past))
	}
	for i := 1; i < len(past); i++ {
		if past[i].Time.Before(past[i-1].Time) {
			t.Fatalf("replay out of order: %+v", past)
		}
	}
	stop := past[len(past)-1].Time.Format(time.RFC3339Nano)
	if got := actions(parse(e.must("events", "--json", "--since", stop, "--until", "0s", "b").stdout)); !slices.Equal(got, []string{"b die", "b stop"}) {
		t.Fatalf("events --since %s b: %q", stop, got)
	}
	if got := e.must("events", "--until", past[0].Time.Add(-time.Second).Format(time.RFC3339Nano)).stdout; got != "" {
		t.Fatalf("events --until before anything happened: %q", got)
	}

	// Live, from now on, ending by itself at --until.
	var live lockedBuffer
	c := e.startEvents(&live, "--json", "--since", "0s", "--until", time.Now().Add(6*time.Second).Format(time.RFC3339Nano))
	e.must("start", "b")
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("events --until in 6s: %v\n%s", err, live.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("events --until in 6s did not end")
	}
	if got := actions(parse(live.String())); !slices.Equal(got, []string{"b start"}) {
		t.Fatalf("events --since 0s --until in 6s: %q", got)
	}
	if r := e.berth("events", "--since", "yesterday"); r.code != 1 || !strings.Contains(r.stderr, `--since "yesterday"`) {
		t.Fatalf("events --since yesterday: %+v", r)
	}
}
