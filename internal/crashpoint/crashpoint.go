// Package crashpoint lets the end-to-end tests kill a berth command at a
// named point, as a power cut or a kill -9 would, to check that the next
// command repairs or cleans what it left. It is inert unless the
// environment variable BERTH_CRASH_AT names the point.
package crashpoint

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Env names the point at which At kills the process.
const Env = "BERTH_CRASH_AT"

var point = sync.OnceValue(func() string { return os.Getenv(Env) })

// At kills the process with SIGKILL if BERTH_CRASH_AT is name.
func At(name string) {
	if p := point(); p != "" && p == name {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // the signal is on its way
	}
}
