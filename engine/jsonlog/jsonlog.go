// Package jsonlog writes and reads container logs in Docker's json-file
// format: one {"log","stream","time"} object per line.
package jsonlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// Entry is one line of output as Docker's json-file driver stores it. Log
// keeps its trailing newline, as Docker's does.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLine is where Docker splits a long line into several entries, so a
// process that never prints a newline cannot grow memory without bound.
const maxLine = 16 * 1024

// Writer appends entries to one log file; it is shared by the stdout and
// stderr copiers, so writes are serialised.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// Create opens (appending) the log file at path.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f}, nil
}

// Write records one entry.
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = w.buf[:0]
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	w.buf = append(append(w.buf, b...), '\n')
	_, err = w.f.Write(w.buf)
	return err
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// LineWriter turns one stream's bytes into entries: one per line, and a line
// longer than Docker's 16 KiB in several.
type LineWriter struct {
	w       *Writer
	stream  string
	partial []byte
}

// Stream returns the line splitter of one stream ("stdout", "stderr").
func (w *Writer) Stream(stream string) *LineWriter { return &LineWriter{w: w, stream: stream} }

// Write takes any chunk of output and writes the entries it completes. It
// always takes all of p: output is never pushed back at the container.
// The first failure to write an entry is returned; the entry is dropped.
func (l *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	var first error
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLine - len(l.partial)
			if len(p) < room {
				l.partial = append(l.partial, p...)
				break
			}
			l.partial = append(l.partial, p[:room]...)
			p = p[room:]
		} else {
			if len(l.partial)+i+1 > maxLine {
				room := maxLine - len(l.partial)
				l.partial = append(l.partial, p[:room]...)
				p = p[room:]
			} else {
				l.partial = append(l.partial, p[:i+1]...)
				p = p[i+1:]
			}
		}
		if err := l.emit(); err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

// Flush writes a final line that has no newline.
func (l *LineWriter) Flush() error {
	if len(l.partial) == 0 {
		return nil
	}
	return l.emit()
}

func (l *LineWriter) emit() error {
	err := l.w.Write(Entry{Log: string(l.partial), Stream: l.stream, Time: time.Now().UTC()})
	l.partial = l.partial[:0]
	return err
}

// ReadOptions select what Read returns.
type ReadOptions struct {
	Tail   int  // last N entries only; <0 means all
	Follow bool // keep reading as the file grows, until Done reports true
	// Done is polled while following at EOF; when it returns true the rest of
	// the file is drained and Read returns.
	Done func() bool
}

// Read calls fn for each entry of the log at path.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !o.Follow {
			return nil
		}
		return err
	}
	defer f.Close()
	if o.Tail >= 0 {
		if err := seekTail(f, o.Tail); err != nil {
			return err
		}
	}
	br := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(partial, line...)
			partial = partial[:0]
			var e Entry
			if jerr := json.Unmarshal(line, &e); jerr == nil {
				if ferr := fn(e); ferr != nil {
					return ferr
				}
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !o.Follow {
			return nil
		}
		if o.Done != nil && o.Done() {
			// One more pass catches what was written between the last read
			// and the container's exit.
			o.Done = func() bool { return true }
			o.Follow = false
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// seekTail positions f so that the last n lines remain to be read.
func seekTail(f *os.File, n int) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const chunk = 64 * 1024
	count := 0
	buf := make([]byte, chunk)
	pos := size
	for pos > 0 {
		step := int64(chunk)
		if pos < step {
			step = pos
		}
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		b := buf[:step]
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			// The newline ending the file does not start a line.
			if pos+int64(i) == size-1 {
				continue
			}
			count++
			if count == n {
				_, err := f.Seek(pos+int64(i)+1, io.SeekStart)
				return err
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// Lines is a convenience for tests and small logs: every entry's text.
func Lines(path string) ([]string, error) {
	var out []string
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(e Entry) error {
		out = append(out, string(bytes.TrimSuffix([]byte(e.Log), []byte("\n"))))
		return nil
	})
	return out, err
}
