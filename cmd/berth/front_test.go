package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/cmd/internal/fastpath"
)

// TestFrontParsesAsBerth: every command line the front serves means to it
// what it means to berth's own flags: the same load options (the load
// cache's key) and, for ps, the same flags and services.
func TestFrontParsesAsBerth(t *testing.T) {
	t.Setenv("COMPOSE_ENV_FILES", "a.env,b.env")
	for _, args := range [][]string{
		{"ps"}, {"ps", "-a", "-q"}, {"ps", "-aq", "web", "db"}, {"ps", "--services", "--no-trunc"},
		{"ps", "--format", "json"}, {"ps", "--format=table {{.ID}}", "--status", "running", "--status=exited"},
		{"ps", "web", "--filter", "status=running", "-a"}, {"ps", "--format", ""},
		{"-f", "x.yaml", "-f", "y.yaml", "ps"}, {"--file=x.yaml", "-fy.yaml", "ps", "-q"},
		{"-p", "name", "-f", "x.yaml", "ps"}, {"--project-name=name", "--file", "x.yaml", "ps"}, {"-pname", "-fx.yaml", "ps"},
		{"--project-directory", "dir", "ps"}, {"--project-directory=dir", "--env-file", "e1", "--env-file=e2", "ps"},
		{"--profile", "p1", "--profile=p2", "ps"},
		{"up", "-d"}, {"up", "--detach", "web"}, {"-f", "x.yaml", "up", "web", "-d", "db"},
	} {
		c, ok := fastpath.Parse(args)
		if !ok {
			t.Errorf("%q: the front does not serve it", args)
			continue
		}
		pf := &projectFlags{}
		root := newRoot(pf)
		cmd, flags, err := root.Traverse(args)
		if err == nil {
			err = cmd.ParseFlags(flags)
		}
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		// As the load cache keys them: nil and empty differ there.
		want := pf.loadOptions()
		want.Services = targets(cmd, cmd.Flags().Args())
		got, _ := json.Marshal(c.Load)
		if w, _ := json.Marshal(want); string(got) != string(w) {
			t.Errorf("%q: the front loads %s, berth %s", args, got, w)
		}
		if c.Verb != cmd.Name() {
			t.Errorf("%q: the front runs %s, berth %s", args, c.Verb, cmd.Name())
		}
		if c.Verb != "ps" {
			if d, _ := cmd.Flags().GetBool("detach"); !d || !c.Up.Detach {
				t.Errorf("%q: detach %v, berth %v", args, c.Up.Detach, d)
			}
			continue
		}
		fl := cmd.Flags()
		var f fastpath.PsFlags
		f.All, _ = fl.GetBool("all")
		f.Quiet, _ = fl.GetBool("quiet")
		f.Services, _ = fl.GetBool("services")
		f.NoTrunc, _ = fl.GetBool("no-trunc")
		f.Orphans, _ = fl.GetBool("orphans")
		if f.Status, _ = fl.GetStringArray("status"); len(f.Status) == 0 {
			f.Status = nil
		}
		f.Filter, _ = fl.GetString("filter")
		f.Format, _ = fl.GetString("format")
		if !reflect.DeepEqual(c.Ps, f) {
			t.Errorf("%q: the front reads ps %+v, berth %+v", args, c.Ps, f)
		}
	}
	// What berth reads another way (or refuses) is berth's.
	for _, args := range [][]string{
		{"-p", "name", "ps"}, {"--ansi", "never", "ps"}, {"--dry-run", "up", "-d"}, {"ps", "-h"}, {"ps", "--orphans=false"},
		{"ps", "--", "web"}, {"ps", "-x"}, {"up"}, {"up", "-d", "--wait"}, {"up", "-dV"}, {"logs", "ps"}, {"ps", "web=1"},
	} {
		if _, ok := fastpath.Parse(args); ok {
			t.Errorf("%q: the front serves it", args)
		}
	}
}
