package runtime

import (
	"context"
	"net"

	"github.com/berth-dev/berth/internal/unixsock"
)

// listenUnix and dialUnix reach sockets under deep state roots too (see
// internal/unixsock).
func listenUnix(path string) (net.Listener, error) { return unixsock.Listen(path) }

func dialUnix(ctx context.Context, path string) (net.Conn, error) { return unixsock.Dial(ctx, path) }
