package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// Call sends one request to the shim listening on socket and returns its
// answer. A shim that is gone is reported as errdefs.ErrUnavailable; a
// failure the shim reports keeps its class (errors.Is works on it).
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	conn, _, resp, err := request(ctx, socket, req)
	if conn != nil {
		conn.Close()
	}
	return resp, err
}

// request sends req and reads the response line. On success the caller
// owns conn, whose further bytes br buffers.
func request(ctx context.Context, socket string, req Request) (net.Conn, *bufio.Reader, Response, error) {
	if req.Version == 0 {
		req.Version = ProtocolVersion
	}
	conn, err := dialUnix(ctx, socket)
	if err != nil {
		return nil, nil, Response{}, fmt.Errorf("shim %s: %v: %w", socket, err, errdefs.ErrUnavailable)
	}
	fail := func(err error) (net.Conn, *bufio.Reader, Response, error) {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, Response{}, ctx.Err()
		}
		return nil, nil, Response{}, fmt.Errorf("shim %s: %v: %w", socket, err, errdefs.ErrUnavailable)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fail(err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return nil, nil, Response{}, fmt.Errorf("shim %s: bad response: %v: %w", socket, err, errdefs.ErrUnknown)
	}
	if err := resp.decodeError(); err != nil {
		conn.Close()
		if resp.Version == 0 && errdefs.IsNotImplemented(err) {
			err = fmt.Errorf("the container's shim was started by an older berth and cannot %s; restart the container: %w", req.Op, errdefs.ErrNotImplemented)
		}
		return nil, nil, resp, err
	}
	return conn, br, resp, nil
}

// Wait blocks until cond holds for the container (see Condition).
func Wait(ctx context.Context, socket string, cond Condition) (Status, error) {
	resp, err := Call(ctx, socket, Request{Op: OpWait, Condition: cond})
	if resp.Status == nil {
		return Status{}, err
	}
	return *resp.Status, err
}

// Stdio is a client's side of a process's stdio.
type Stdio struct {
	Stdin  io.Reader // nil: no input
	Stdout io.Writer
	Stderr io.Writer // output of a terminal all goes to Stdout
	// Resize delivers the client terminal's size changes.
	Resize <-chan WindowSize
	// DetachKeys, read from Stdin, end the session and leave the process
	// running (see ParseDetachKeys).
	DetachKeys []byte
	// Attached, if set, is called once the shim has taken the client on:
	// from then on no output is missed (a held container can be started).
	Attached func()
}

// ErrDetached ends a session the user left with the detach keys.
var ErrDetached = errors.New("detached")

// Exec runs spec in the container. Unless it is detached, it streams the
// process's stdio until it exits and returns its exit code; a detached
// process runs on, and Exec returns once it has started.
func Exec(ctx context.Context, socket string, spec ExecSpec, stdio Stdio, size *WindowSize) (int, error) {
	req := Request{Op: OpExec, Exec: &spec, Stdin: stdio.Stdin != nil && !spec.Detach, Size: size}
	conn, br, _, err := request(ctx, socket, req)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	if spec.Detach {
		return 0, nil
	}
	return stream(ctx, conn, br, stdio)
}

// Attach streams the main process's output (and input, if the container
// keeps it open) until the current run ends, and returns its exit code.
func Attach(ctx context.Context, socket string, stdio Stdio, size *WindowSize) (int, error) {
	conn, br, _, err := request(ctx, socket, Request{Op: OpAttach, Stdin: stdio.Stdin != nil, Size: size})
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	if stdio.Attached != nil {
		stdio.Attached()
	}
	return stream(ctx, conn, br, stdio)
}

// stream pumps frames between the client's stdio and the shim until the
// process exits (its code), the user detaches (ErrDetached) or ctx ends.
func stream(ctx context.Context, conn net.Conn, br *bufio.Reader, stdio Stdio) (int, error) {
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(conn, typ, p)
	}
	done := make(chan struct{})
	defer close(done)
	detached := make(chan struct{})
	var detachOnce sync.Once
	detach := func() { detachOnce.Do(func() { close(detached); conn.Close() }) }
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if stdio.Stdin != nil {
		go func() {
			in := stdio.Stdin
			if len(stdio.DetachKeys) > 0 {
				in = &detachReader{r: in, keys: stdio.DetachKeys}
			}
			buf := make([]byte, 32*1024)
			for {
				n, err := in.Read(buf)
				if n > 0 && send(frameStdin, buf[:n]) != nil {
					return
				}
				if errors.Is(err, errDetachKeys) {
					detach()
					return
				}
				if err != nil {
					_ = send(frameCloseStdin, nil)
					return
				}
			}
		}()
	}
	if stdio.Resize != nil {
		go func() {
			for {
				select {
				case ws, ok := <-stdio.Resize:
					if !ok {
						return
					}
					_ = send(frameResize, encodeSize(ws))
				case <-done:
					return
				}
			}
		}()
	}
	stderr := stdio.Stderr
	if stderr == nil {
		stderr = stdio.Stdout
	}
	buf := make([]byte, 64*1024)
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			select {
			case <-detached:
				return -1, ErrDetached
			default:
			}
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("shim connection lost: %v: %w", err, errdefs.ErrUnavailable)
		}
		switch typ {
		case frameStdout:
			if stdio.Stdout != nil {
				_, _ = stdio.Stdout.Write(p)
			}
		case frameStderr:
			if stderr != nil {
				_, _ = stderr.Write(p)
			}
		case frameExit:
			return decodeExit(p), nil
		}
	}
}
