package jsonlog

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/fswatch"
)

// ReadOptions select what Read returns.
type ReadOptions struct {
	Tail   int  // last N entries only; <0 means all
	Follow bool // keep reading as the log grows, until Done reports true
	// Done is polled while following at the end of the log; when it
	// returns true the rest is drained and Read returns.
	Done func() bool
}

// Read calls fn for each entry of the log at path, its rotated files
// (compressed or not) first, oldest first. Following goes on across
// rotations: once the writer has moved on from the file being read, the
// rest of that file is read, then the files that came after it.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Entry) error) error {
	rotated, cur, err := openSet(path, nil)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range rotated {
			s.close()
		}
	}()
	if cur == nil && o.Follow {
		return &os.PathError{Op: "open", Path: path, Err: os.ErrNotExist}
	}
	found := 0
	if cur != nil && o.Tail >= 0 {
		if found, err = seekTail(cur, o.Tail); err != nil {
			cur.Close()
			return err
		}
	}
	if o.Tail >= 0 {
		err = tailRotated(rotated, o.Tail-found, fn)
	} else {
		for _, s := range rotated {
			if err = readAll(s.r, fn); err != nil {
				break
			}
		}
	}
	if cur == nil {
		return err
	}
	if err != nil {
		cur.Close()
		return err
	}
	return follow(ctx, path, cur, o, fn)
}

// follow reads cur, then waits for more while o.Follow, moving to the
// next file at each rotation. It closes cur, and each file after it.
func follow(ctx context.Context, path string, cur *os.File, o ReadOptions, fn func(Entry) error) error {
	defer func() { cur.Close() }()
	br := bufio.NewReader(cur)
	var partial []byte
	moved := false // cur has been rotated away: drain it, then go on
	var watch *dirWatch
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(partial, line...)
			partial = partial[:0]
			if err := emit(line, fn); err != nil {
				return err
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
		if moved {
			// cur is complete: read what came after it, then follow the
			// current file.
			rotated, next, err := openSet(path, cur)
			if err != nil {
				return err
			}
			if next == nil {
				// No current file yet (the writer could not make one):
				// read nothing until there is, so nothing is read twice.
				for _, s := range rotated {
					s.close()
				}
				rotated = nil
			}
			for _, s := range rotated {
				if err == nil {
					err = readAll(s.r, fn)
				}
				s.close()
			}
			if err != nil {
				if next != nil {
					next.Close()
				}
				return err
			}
			if next != nil {
				cur.Close()
				cur = next
				br.Reset(cur)
				partial = partial[:0]
				moved = false
				continue
			}
		} else if rotatedAway(path, cur) {
			// The writer wrote its last to cur before it moved it: one more
			// pass reads that, then the files after it.
			moved = true
			continue
		}
		if o.Done != nil && o.Done() {
			// One more pass catches what was written between the last read
			// and the container's exit.
			o.Done = func() bool { return true }
			o.Follow = false
			continue
		}
		if watch == nil {
			watch = watchDir(ctx, filepath.Dir(path))
			defer watch.stop()
			continue // what changed before the watch began
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-watch.changed:
		case <-time.After(watch.fallback):
		}
	}
}

// dirWatch wakes a follower when anything in the log's directory changes:
// the log grows or rotates, or a status file next to it (what Done reads)
// is rewritten. Without inotify, or for what makes no event there (a
// process that dies), the follower looks again after fallback anyway.
type dirWatch struct {
	changed  chan []string
	fallback time.Duration
	stop     func()
}

func watchDir(ctx context.Context, dir string) *dirWatch {
	w := &dirWatch{changed: make(chan []string, 1), fallback: time.Second, stop: func() {}}
	// Only the directory's own entries: not what is below its
	// subdirectories (a container's files/).
	fw, err := fswatch.New([]string{dir}, func(p string) bool { return filepath.Dir(p) != dir }, 0)
	if err != nil {
		w.fallback = 50 * time.Millisecond
		return w
	}
	ctx, cancel := context.WithCancel(ctx)
	go fw.Run(ctx, w.changed)
	w.stop = func() {
		cancel()
		fw.Close()
	}
	return w
}

// emit decodes one line and hands it to fn; a line that is not an entry
// (cut short by a crash) is skipped.
func emit(line []byte, fn func(Entry) error) error {
	var e Entry
	if decode(line, &e) != nil {
		return nil
	}
	return fn(e)
}

// readAll hands every entry of a finished file to fn.
func readAll(r io.Reader, fn func(Entry) error) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if err := emit(line, fn); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// tailRotated hands fn the last n lines of the rotated files, oldest
// first.
func tailRotated(rotated []segment, n int, fn func(Entry) error) error {
	if n <= 0 || len(rotated) == 0 {
		return nil
	}
	ring := make([][]byte, 0, n)
	start := 0
	for _, s := range rotated {
		br := bufio.NewReader(s.r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				if len(ring) < n {
					ring = append(ring, line)
				} else {
					ring[start] = line
					start = (start + 1) % n
				}
			}
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
		}
	}
	for i := range ring {
		if err := emit(ring[(start+i)%len(ring)], fn); err != nil {
			return err
		}
	}
	return nil
}

// seekTail positions f so that the last n lines remain to be read; found
// is how many lines that is (fewer than n when the file has fewer).
func seekTail(f *os.File, n int) (found int, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return 0, err
	}
	const chunk = 64 * 1024
	buf := make([]byte, chunk)
	pos := size
	for pos > 0 {
		step := int64(chunk)
		if pos < step {
			step = pos
		}
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
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
			found++
			if found == n {
				_, err := f.Seek(pos+int64(i)+1, io.SeekStart)
				return found, err
			}
		}
	}
	if size > 0 {
		found++ // the first line has no newline before it
	}
	_, err = f.Seek(0, io.SeekStart)
	return found, err
}
