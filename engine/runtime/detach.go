package runtime

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
)

// DefaultDetachKeys is Docker's detach sequence.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ParseDetachKeys reads a detach sequence in Docker's notation: keys
// separated by commas, each a single character or "ctrl-" followed by a
// letter or one of @ [ \ ] ^ _.
func ParseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		key, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		if !ok || len(key) != 1 {
			return nil, fmt.Errorf("detach keys %q: %q is not a character or ctrl-<key>: %w", s, k, errdefs.ErrInvalidArgument)
		}
		switch c := key[0]; {
		case c >= 'a' && c <= 'z':
			out = append(out, c-'a'+1)
		case c == '@':
			out = append(out, 0)
		case c >= '[' && c <= '_':
			out = append(out, c-'['+27)
		default:
			return nil, fmt.Errorf("detach keys %q: ctrl-%c is not a control key: %w", s, c, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}

var errDetachKeys = errors.New("detach keys read")

// detachReader passes input through until it reads the detach sequence.
// Bytes that begin the sequence are held back until it is clear whether
// the rest follows; if not, they pass through after all.
type detachReader struct {
	r       io.Reader
	keys    []byte
	held    int // keys matched so far
	pending []byte
	err     error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && d.err == nil {
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if d.err != nil {
				break // input after the sequence is not the process's
			}
			if b == d.keys[d.held] {
				d.held++
				if d.held == len(d.keys) {
					d.err = errDetachKeys
				}
				continue
			}
			d.pending = append(d.pending, d.keys[:d.held]...)
			d.held = 0
			if b == d.keys[0] {
				d.held = 1
				continue
			}
			d.pending = append(d.pending, b)
		}
		if err != nil && d.err == nil {
			d.pending = append(d.pending, d.keys[:d.held]...)
			d.held = 0
			d.err = err
		}
	}
	if len(d.pending) > 0 {
		n := copy(p, d.pending)
		d.pending = d.pending[n:]
		return n, nil
	}
	return 0, d.err
}
