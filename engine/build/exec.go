package build

import (
	"context"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Executor runs the process of a RUN step as a short-lived container on a
// root filesystem the builder has mounted. The engine implements it with
// Berth's runtime; the builder knows nothing of namespaces or networks.
type Executor interface {
	Run(ctx context.Context, p Process) (exitCode int, err error)
}

// Process is one RUN step's container.
type Process struct {
	ID       string // unique among live containers; a valid container id
	Rootfs   string // mounted, writable
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	Groups   []uint32
	// Network is "default" (a bridge with outside access), "host" or
	// "none".
	Network    string
	ExtraHosts []string // "name:ip"
	Mounts     []specs.Mount
	ShmSize    int64
	Ulimits    []specs.POSIXRlimit
	// Output receives stdout and stderr.
	Output io.Writer
}
