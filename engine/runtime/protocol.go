package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
)

// The control protocol is one JSON request line and one JSON response line
// per connection on the shim's unix socket. New operations and fields can be
// added without breaking older peers: unknown fields are ignored and an
// unknown op is answered with an error.
const (
	OpState = "state" // report the current Status
	OpKill  = "kill"  // send Signal to the container's init
	OpStop  = "stop"  // send Signal, wait Timeout, then SIGKILL; answer after exit
	OpWait  = "wait"  // answer when the container has exited
)

// Request is one control request.
type Request struct {
	Op      string `json:"op"`
	Signal  string `json:"signal,omitempty"`  // "SIGTERM", "TERM" or a number
	Timeout int64  `json:"timeout,omitempty"` // milliseconds, for stop
}

// Response answers a Request.
type Response struct {
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// Call sends one request to the shim listening on socket and returns its
// answer. A shim that is gone is reported as errdefs.ErrUnavailable.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	conn, err := dialUnix(ctx, socket)
	if err != nil {
		return Response{}, fmt.Errorf("shim %s: %v: %w", socket, err, errdefs.ErrUnavailable)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("shim %s: %v: %w", socket, err, errdefs.ErrUnavailable)
	}
	var resp Response
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		return Response{}, fmt.Errorf("shim %s: %v: %w", socket, err, errdefs.ErrUnavailable)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("shim %s: bad response: %w", socket, err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("shim: %s", resp.Error)
	}
	return resp, nil
}
