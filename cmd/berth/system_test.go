package main

import (
	"os"
	"strings"
	"testing"
)

// The systemd unit shipped in contrib runs a command this berth has.
func TestBootUnitRunsABerthCommand(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../contrib/systemd/berth-boot.service")
	if err != nil {
		t.Fatal(err)
	}
	var exec []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec = strings.Fields(v)
		}
	}
	if len(exec) < 2 || !strings.HasSuffix(exec[0], "/berth") {
		t.Fatalf("ExecStart runs %q", exec)
	}
	cmd, rest, err := newRootCommand().Find(exec[1:])
	if err != nil || len(rest) != 0 || cmd.CommandPath() != "berth system boot" {
		t.Fatalf("ExecStart's arguments %q find %q (left %q): %v", exec[1:], cmd.CommandPath(), rest, err)
	}
	if cmd.Args != nil && cmd.Args(cmd, rest) != nil {
		t.Fatalf("berth system boot refuses no arguments")
	}
}
