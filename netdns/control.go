package netdns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/unixsock"
)

// Spawn starts "berth dns" for a directory, detached from the caller, with
// ready as the pipe on which the server says it is serving (Config.Ready).
type Spawn func(ready *os.File) error

// spawnTimeout bounds how long a caller waits for a new server to serve.
const spawnTimeout = 10 * time.Second

// errNoServer: nothing answers on the control socket.
var errNoServer = errors.New("no dns server")

// call sends one request to the server in dir and reads its reply.
func call(ctx context.Context, dir string, req request) (reply, error) {
	c, err := dial(ctx, dir)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stopWatch := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stopWatch()
	if err := send(c, req); err != nil {
		return reply{}, fmt.Errorf("%w: %v", errNoServer, err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return reply{}, ctx.Err()
		}
		// The server went away between accept and reply: it was stopping.
		return reply{}, fmt.Errorf("%w: %v", errNoServer, err)
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return reply{}, fmt.Errorf("dns server reply: %w", err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("dns server: %s: %w", rep.Error, errdefs.ErrUnavailable)
	}
	return rep, nil
}

func dial(ctx context.Context, dir string) (*net.UnixConn, error) {
	c, err := unixsock.Dial(ctx, filepath.Join(dir, controlSocket))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errNoServer
		}
		return nil, fmt.Errorf("dns server control: %w", err)
	}
	return c, nil
}

func send(c net.Conn, req request) error {
	b, _ := json.Marshal(req)
	_, err := c.Write(append(b, '\n'))
	return err
}

// Ensure publishes r to the server in dir and returns once the server
// answers with it in every sandbox r lists, starting a server with spawn if
// none runs. With no networks in r, Ensure only writes the records.
func Ensure(ctx context.Context, dir string, r Records, spawn Spawn) error {
	gen, err := WriteRecords(ctx, dir, r)
	if err != nil {
		return err
	}
	if len(r.Networks) == 0 {
		return nil
	}
	rep, err := reloadOrSpawn(ctx, dir, spawn)
	if err != nil {
		return err
	}
	return checkLoaded(dir, rep, gen)
}

func checkLoaded(dir string, rep reply, gen uint64) error {
	if rep.Generation < gen {
		// Records are written and reloaded by whoever comes last; an older
		// generation after a reload means the file went backwards.
		return fmt.Errorf("dns server in %s loaded records generation %d, want %d: %w", dir, rep.Generation, gen, errdefs.ErrUnavailable)
	}
	if len(rep.Failed) > 0 {
		var msgs []string
		for _, sb := range slices.Sorted(mapKeys(rep.Failed)) {
			msgs = append(msgs, filepath.Base(sb)+": "+rep.Failed[sb])
		}
		return fmt.Errorf("dns server cannot answer in %s: %w", strings.Join(msgs, "; "), errdefs.ErrUnavailable)
	}
	return nil
}

// reloadOrSpawn asks the server to reload, starting one first if none runs.
func reloadOrSpawn(ctx context.Context, dir string, spawn Spawn) (reply, error) {
	rep, err := call(ctx, dir, request{Op: "reload"})
	if !errors.Is(err, errNoServer) {
		return rep, err
	}
	if err := revive(ctx, dir, spawn); err != nil {
		return reply{}, err
	}
	return call(ctx, dir, request{Op: "reload"})
}

// revive starts a server unless one runs. The decision is made under a lock,
// so two callers never start two servers, and a server being stopped is
// replaced only after it is gone.
func revive(ctx context.Context, dir string, spawn Spawn) error {
	l, err := lockfile.Acquire(ctx, filepath.Join(dir, ensureLock))
	if err != nil {
		return err
	}
	defer l.Unlock()
	if _, err := call(ctx, dir, request{Op: "status"}); !errors.Is(err, errNoServer) {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	err = spawn(pw)
	pw.Close()
	if err != nil {
		return fmt.Errorf("start dns server: %w", err)
	}
	// The server writes one line once it serves, or closes the pipe by
	// dying; the deadline covers a server stuck before either.
	pr.SetReadDeadline(time.Now().Add(spawnTimeout))
	stop := context.AfterFunc(ctx, func() { pr.SetReadDeadline(time.Now()) })
	defer stop()
	line, err := bufio.NewReader(pr).ReadString('\n')
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("start dns server in %s: %w", dir, ctx.Err())
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("start dns server in %s: %v: %w", dir, err, errdefs.ErrUnavailable)
	case strings.TrimSpace(line) != "ok":
		why := strings.TrimSpace(strings.TrimPrefix(line, "error: "))
		if why == "" {
			why = "it exited before serving (see dns.log)"
		}
		return fmt.Errorf("start dns server in %s: %s: %w", dir, why, errdefs.ErrUnavailable)
	}
	return nil
}

// Update publishes r to a running server and waits for it to reload; with
// no server it only writes the records (the next Ensure starts one).
func Update(ctx context.Context, dir string, r Records) error {
	gen, err := WriteRecords(ctx, dir, r)
	if err != nil {
		return err
	}
	rep, err := call(ctx, dir, request{Op: "reload"})
	if errors.Is(err, errNoServer) {
		return nil
	}
	if err != nil {
		return err
	}
	if rep.Generation < gen {
		return fmt.Errorf("dns server in %s loaded records generation %d, want %d: %w", dir, rep.Generation, gen, errdefs.ErrUnavailable)
	}
	return nil
}

// Stop ends the server in dir if the records have no networks left, and
// returns once it is gone, so that a command removing the last network
// leaves no process behind. A server that is needed again is left alone:
// the check and the request happen under the lock revive takes.
func Stop(ctx context.Context, dir string) error {
	l, err := lockfile.Acquire(ctx, filepath.Join(dir, ensureLock))
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := ReadRecords(dir)
	if err != nil || len(r.Networks) > 0 {
		return err
	}
	c, err := dial(ctx, dir)
	if errors.Is(err, errNoServer) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	stopWatch := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stopWatch()
	if err := send(c, request{Op: "stop"}); err != nil {
		return nil // gone already
	}
	// The reply, then the end of the connection once the server is gone.
	_, _ = io.Copy(io.Discard, c)
	return ctx.Err()
}

// Status is what a running server reports of itself.
type Status struct {
	Pid        int
	Generation uint64
	Sandboxes  int
}

// ServerStatus asks the server in dir how it is; errdefs.ErrNotFound when
// none runs.
func ServerStatus(ctx context.Context, dir string) (Status, error) {
	rep, err := call(ctx, dir, request{Op: "status"})
	if errors.Is(err, errNoServer) {
		return Status{}, fmt.Errorf("dns server in %s: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return Status{}, err
	}
	return Status{Pid: rep.Pid, Generation: rep.Generation, Sandboxes: rep.Sandboxes}, nil
}

// Watch keeps a server running in dir until ctx is done: it holds a
// connection the server keeps open for its whole life, and when that ends
// without ctx being done (the server was killed), starts a new one with
// spawn, as long as the records still list a network. Many watchers may
// run; the lock in revive lets one of them start the server.
func Watch(ctx context.Context, dir string, spawn Spawn, onError func(error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if c, err := dial(ctx, dir); err == nil {
			if send(c, request{Op: "watch"}) == nil {
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = io.Copy(io.Discard, c) // returns when the server is gone
				stop()
			}
			c.Close()
			if ctx.Err() != nil {
				return
			}
		}
		r, err := ReadRecords(dir)
		if err == nil && len(r.Networks) == 0 {
			return // nothing to serve: the last network went
		}
		if err == nil {
			if _, err = reloadOrSpawn(ctx, dir, spawn); err == nil {
				backoff = 100 * time.Millisecond
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(err)
		}
		// Only a failed start waits before trying again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
