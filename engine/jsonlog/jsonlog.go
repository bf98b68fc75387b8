// Package jsonlog writes and reads container logs in Docker's json-file
// format: one {"log","stream","time"} object per line.
package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
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

// Options bound a log as Docker's json-file options do.
type Options struct {
	// MaxSize is the size (bytes) past which the file is rotated; 0: never.
	MaxSize int64
	// MaxFile is how many files are kept, the current one included: the
	// rotated ones are path.1 (the newest) to path.<MaxFile-1>. Below 2,
	// the current file alone is kept and starts afresh at MaxSize.
	MaxFile int
	// Compress gzips rotated files (path.N.gz), in the background.
	Compress bool
	// OnError hears when writing starts failing (the error) and when it
	// works again (nil), once per change. It is called with the writer's
	// lock held and must not call back into it.
	OnError func(error)
}

// Writer appends entries to a log file, rotating it as its Options say; it
// is shared by the stdout and stderr copiers, so writes are serialised.
// A write that fails (a full disk) drops its entry and leaves no part of
// it in the file, so a line is never torn; the next write tries again.
type Writer struct {
	mu      sync.Mutex
	path    string
	o       Options
	f       *os.File // nil when it could not be opened: retried at each write
	size    int64
	buf     []byte
	failing bool
	// compressed is closed once the last rotated file is compressed; a
	// rotation waits for it, so compression and shifting never overlap.
	compressed chan struct{}
}

// Create opens (appending) the log file at path.
func Create(path string, o Options) (*Writer, error) {
	w := &Writer{path: path, o: o}
	if err := w.open(); err != nil {
		return nil, err
	}
	if o.MaxSize > 0 {
		// The rotation lock, made before any rotation, so that readers
		// that find none know no rotation can happen (see openSet).
		l, err := os.OpenFile(lockPath(path), os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			w.f.Close()
			return nil, err
		}
		l.Close()
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write records one entry.
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	err = w.write(w.buf)
	if failing := err != nil; failing != w.failing {
		w.failing = failing
		if w.o.OnError != nil {
			w.o.OnError(err)
		}
	}
	return err
}

func (w *Writer) write(line []byte) error {
	if w.o.MaxSize > 0 && w.size > 0 && w.size+int64(len(line)) > w.o.MaxSize {
		// A rotation that cannot happen now (a reader is opening the
		// files, the disk is full) is tried again at the next write; the
		// line goes to the current file meanwhile.
		_ = w.rotate()
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(line)
	if err != nil {
		if n > 0 {
			// Cut off what part of the line made it, so the next line does
			// not continue a torn one.
			if terr := w.f.Truncate(w.size); terr != nil {
				w.size += int64(n)
			}
		}
		return err
	}
	w.size += int64(n)
	return nil
}

// Close closes the file, once a compression under way is done.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.awaitCompression()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

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

// Lines is a convenience for tests and small logs: every entry's text.
func Lines(path string) ([]string, error) {
	var out []string
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(e Entry) error {
		out = append(out, string(bytes.TrimSuffix([]byte(e.Log), []byte("\n"))))
		return nil
	})
	return out, err
}
