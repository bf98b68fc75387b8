package runtime

import (
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
// re-executed the binary as "berth init". It never returns in that case.
// Call it first thing, from an init function of package main.
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
}
