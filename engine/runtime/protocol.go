package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
)

// The task protocol between berth commands and a container's shim, on the
// shim's unix socket. Each connection carries one request: a JSON line from
// the client, a JSON line back. Streaming requests (exec, attach) then
// carry frames both ways until the process exits or the client leaves.
//
// Versions: a request says which version its client speaks; the shim
// answers in that version (or its own, if older) and says which. Shims of
// version 1 predate the field and answer without it, so a client knows an
// old shim from its first answer. Unknown fields are ignored both ways and
// an unknown op is an error of class not implemented, so ops and fields can
// be added without breaking either side.
const (
	// ProtocolVersion is the version this package speaks.
	ProtocolVersion = 2
)

// Ops. Version 1 had state, kill, stop and wait (final exit only).
const (
	OpState  = "state"  // report the current Status
	OpKill   = "kill"   // send Signal to the container's init
	OpStop   = "stop"   // send Signal, wait Timeout, then SIGKILL; answer after exit
	OpWait   = "wait"   // answer when Condition holds (default: the final exit)
	OpStart  = "start"  // start a container whose shim was told to hold it (v2)
	OpExec   = "exec"   // run a process in the container; streams its stdio unless detached (v2)
	OpAttach = "attach" // stream the main process's stdio (v2)
	OpPause  = "pause"  // freeze every process of the container (v2)
	OpResume = "resume" // thaw it (v2)
	OpStats  = "stats"  // resource usage (v2)
	OpPids   = "pids"   // host pids of the container's processes (v2)
)

// Condition is what a wait request waits for.
type Condition string

// Conditions a wait can ask for.
const (
	// ConditionExit holds after the container's final exit, once the shim
	// has torn down its network and mounts (the only wait of version 1).
	ConditionExit Condition = ""
	// ConditionNextExit holds when the current run ends, including a run
	// the restart policy will restart.
	ConditionNextExit Condition = "next-exit"
	// ConditionRunning holds once the container runs (or has run: a
	// container that already exited satisfies it too). A shim that fails
	// to start it answers with an error.
	ConditionRunning Condition = "running"
	// ConditionStarted holds once the shim is done starting: the container
	// runs (or has run), or it is created and held for a start request.
	// A shim that fails to start it answers with an error, or is gone.
	ConditionStarted Condition = "started"
	// ConditionHealthy holds when the healthcheck reports healthy. An
	// unhealthy container, one without a healthcheck, or one that exits
	// first is an error of class failed precondition.
	ConditionHealthy Condition = "healthy"
)

// Request is one control request.
type Request struct {
	Version   int       `json:"version,omitempty"` // absent: version 1
	Op        string    `json:"op"`
	Signal    string    `json:"signal,omitempty"`  // "SIGTERM", "TERM" or a number
	Timeout   int64     `json:"timeout,omitempty"` // milliseconds, for stop
	Condition Condition `json:"condition,omitempty"`
	Exec      *ExecSpec `json:"exec,omitempty"`
	// Stream settings of exec and attach.
	Stdin bool        `json:"stdin,omitempty"` // the client sends input
	Size  *WindowSize `json:"size,omitempty"`  // initial terminal size
}

// ExecSpec is a process to run in a running container. Empty fields take
// the container's own: its user, working directory and environment (Env is
// added to it).
type ExecSpec struct {
	Args       []string `json:"args"`
	Env        []string `json:"env,omitempty"`
	User       *User    `json:"user,omitempty"` // resolved by the client
	WorkingDir string   `json:"working_dir,omitempty"`
	TTY        bool     `json:"tty,omitempty"`
	Detach     bool     `json:"detach,omitempty"` // no stdio; the answer comes once it runs
	Privileged bool     `json:"privileged,omitempty"`
}

// Response answers a Request.
type Response struct {
	Version int `json:"version,omitempty"` // absent: a version 1 shim
	// Error is the failure's message, Class its errdefs class ("not found",
	// "conflict"...; see errdefs.Resolve). Version 1 sent no class.
	Error  string  `json:"error,omitempty"`
	Class  string  `json:"class,omitempty"`
	Status *Status `json:"status,omitempty"`
	Stats  *Stats  `json:"stats,omitempty"`
	Pids   []int   `json:"pids,omitempty"`
	// Stream says that frames follow on this connection.
	Stream bool `json:"stream,omitempty"`
	// Pid of a process an exec started.
	Pid int `json:"pid,omitempty"`
}

// WindowSize is a terminal's size in characters.
type WindowSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// classes are the errdefs classes that cross the wire, by the names their
// sentinels give themselves.
var classes = []error{
	errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrAlreadyExists,
	errdefs.ErrFailedPrecondition, errdefs.ErrConflict, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented, errdefs.ErrPermissionDenied, errdefs.ErrResourceExhausted,
	errdefs.ErrAborted, errdefs.ErrInternal, errdefs.ErrUnknown,
}

// encodeError fills the response's error fields from err: its message,
// without the class suffix that wrapping left at its end, and its class.
func (r *Response) encodeError(err error) {
	class := errdefs.Resolve(err)
	r.Class = class.Error()
	r.Error = strings.TrimSuffix(err.Error(), ": "+r.Class)
}

// decodeError turns a response's error back into an error of its class, so
// errors.Is works on the client's side of the socket.
func (r Response) decodeError() error {
	if r.Error == "" {
		return nil
	}
	for _, c := range classes {
		if r.Class == c.Error() {
			return fmt.Errorf("%s: %w", r.Error, c)
		}
	}
	if r.Version == 0 && strings.HasPrefix(r.Error, "unknown op") {
		return fmt.Errorf("%s: %w", r.Error, errdefs.ErrNotImplemented)
	}
	return fmt.Errorf("%s: %w", r.Error, errdefs.ErrUnknown)
}

// Frames follow a streaming response: one type byte, a big-endian 32-bit
// payload length, the payload.
const (
	frameStdin      byte = 0 // client -> shim: input
	frameStdout     byte = 1 // shim -> client
	frameStderr     byte = 2 // shim -> client (never with a terminal)
	frameCloseStdin byte = 3 // client -> shim: end of input
	frameResize     byte = 4 // client -> shim: rows, cols as two uint16
	frameExit       byte = 5 // shim -> client: exit code as int32; the last frame
)

// maxFrame bounds a frame's payload; a peer sending more is broken.
const maxFrame = 1 << 20

func writeFrame(w io.Writer, typ byte, p []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	// One write per frame: frames from concurrent writers never interleave
	// as long as each holds the connection's write lock.
	buf := make([]byte, 0, len(hdr)+len(p))
	_, err := w.Write(append(append(buf, hdr[:]...), p...))
	return err
}

func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, errors.New("frame too large")
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

func encodeSize(s WindowSize) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], s.Rows)
	binary.BigEndian.PutUint16(b[2:], s.Cols)
	return b[:]
}

func decodeSize(p []byte) (WindowSize, bool) {
	if len(p) != 4 {
		return WindowSize{}, false
	}
	return WindowSize{Rows: binary.BigEndian.Uint16(p[:2]), Cols: binary.BigEndian.Uint16(p[2:])}, true
}

func encodeExit(code int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return b[:]
}

func decodeExit(p []byte) int {
	if len(p) != 4 {
		return -1
	}
	return int(int32(binary.BigEndian.Uint32(p)))
}
