package runtime

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// The cgroup device controller must be registered or every start fails
	// with "cgroup manager is not configured to set device rules".
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's constructor runs before the Go runtime in "berth init" and
	// joins the namespaces libcontainer asked for.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// MaybeInit turns this process into a container's init when libcontainer
// re-executed the binary as "berth init", into the minimal init of a
// container with init: true, or into the seccomp compile helper. It never
// returns in those cases.
// Call it first thing, from an init function of package main.
func MaybeInit() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "init":
		libcontainer.Init()
	case entryCommand:
		// The C half of the entry (entry_linux.c) has installed the
		// seccomp program and set the capabilities; it returns to Go only
		// for the minimal init.
		e, ok := parseEntry(os.Args)
		if !ok || !e.init {
			fmt.Fprintln(os.Stderr, "berth: container entry: bad command line")
			os.Exit(127)
		}
		os.Exit(containerInit(e.args))
	case compileCommand:
		os.Exit(compileMain())
	}
}
