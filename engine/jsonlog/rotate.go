package jsonlog

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/lockfile"
)

// A log's files: path (the current one), then path.1 (the newest rotated)
// to path.N, each possibly compressed as path.N.gz. A rotation shifts them
// with the exclusive lock path.lock held; a reader holds it shared while
// it opens the set, so it never sees one half shifted. The writer only
// tries the lock: a reader slow to let go delays a rotation, never a write.

func lockPath(path string) string { return path + ".lock" }

func rotatedPath(path string, k int) string { return path + "." + strconv.Itoa(k) }

// identityPrefix starts the gzip comment of a compressed file: the device
// and inode of the file it was made from, so a reader that holds that file
// open knows where it went.
const identityPrefix = "berth-log-source "

func identity(f *os.File) string {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// rotate moves the current file to path.1 (shifting the others, dropping
// the oldest) and opens a new one; with MaxFile below 2, the current file
// starts afresh. Called with w.mu held.
func (w *Writer) rotate() error {
	l, ok, err := lockfile.TryAcquire(lockPath(w.path))
	if err != nil || !ok {
		return err
	}
	defer l.Unlock()
	w.awaitCompression()
	if w.o.MaxFile < 2 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	} else {
		last := w.o.MaxFile - 1
		for _, p := range []string{rotatedPath(w.path, last), rotatedPath(w.path, last) + ".gz"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		for k := last - 1; k >= 1; k-- {
			for _, ext := range []string{"", ".gz"} {
				if err := os.Rename(rotatedPath(w.path, k)+ext, rotatedPath(w.path, k+1)+ext); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
		}
		if err := os.Rename(w.path, rotatedPath(w.path, 1)); err != nil {
			return err
		}
	}
	old := w.f
	w.f, w.size = nil, 0
	// Opened before the lock goes, so a reader always finds a current
	// file (unless the disk refuses one: the next write tries again).
	_ = w.open()
	if old != nil {
		if w.o.Compress && w.o.MaxFile >= 2 {
			done := make(chan struct{})
			w.compressed = done
			src, id := rotatedPath(w.path, 1), identity(old)
			go func() {
				defer close(done)
				_ = compress(src, id)
			}()
		}
		old.Close()
	}
	return nil
}

func (w *Writer) awaitCompression() {
	if w.compressed != nil {
		<-w.compressed
		w.compressed = nil
	}
}

// compress writes src as src.gz (through a temporary file, so a reader
// finds either whole) and removes src. On failure src stays as it is.
func compress(src, id string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := src + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Comment = identityPrefix + id
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Close())
	if err == nil {
		err = os.Rename(tmp, src+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(src)
}

// segment is one file of a log, open for reading.
type segment struct {
	f  *os.File
	r  io.Reader // f, or a gzip reader on it
	id string    // the identity of the file it holds (see identity)
}

func (s segment) close() { s.f.Close() }

// openRotated opens path.k, compressed or not; ok is false when neither
// exists. A compression may replace path.k by path.k.gz meanwhile: both
// are looked for again.
func openRotated(path string, k int) (seg segment, ok bool, err error) {
	p := rotatedPath(path, k)
	for range 2 {
		if f, err := os.Open(p + ".gz"); err == nil {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				return seg, false, fmt.Errorf("%s.gz: %w", p, err)
			}
			return segment{f: f, r: zr, id: strings.TrimPrefix(zr.Comment, identityPrefix)}, true, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return seg, false, err
		}
		if f, err := os.Open(p); err == nil {
			return segment{f: f, r: f, id: identity(f)}, true, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return seg, false, err
		}
	}
	return seg, false, nil
}

// openSet opens a log's files as one consistent set: the rotated ones
// oldest first, those newer than the file after (when it is among them),
// and the current file last (nil when there is none).
func openSet(path string, after *os.File) (rotated []segment, current *os.File, err error) {
	// Only a log that rotates has the lock file (see Create); a reader
	// never makes one, so reading needs no room on the disk.
	if _, err := os.Stat(lockPath(path)); err == nil {
		l, err := lockfile.AcquireShared(context.Background(), lockPath(path))
		if err != nil {
			return nil, nil, err
		}
		defer l.Unlock()
	}
	var newestFirst []segment
	defer func() {
		if err != nil {
			for _, s := range newestFirst {
				s.close()
			}
		}
	}()
	afterID := ""
	if after != nil {
		afterID = identity(after)
	}
	for k := 1; ; k++ {
		seg, ok, err := openRotated(path, k)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		if afterID != "" && seg.id == afterID {
			// This one and the older ones have been read.
			seg.close()
			break
		}
		newestFirst = append(newestFirst, seg)
	}
	current, err = os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		rotated = append(rotated, newestFirst[i])
	}
	return rotated, current, nil
}

// rotatedAway reports whether f is no longer the log's current file.
func rotatedAway(path string, f *os.File) bool {
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil {
		return false
	}
	if err := unix.Stat(path, &now); err != nil {
		return errors.Is(err, unix.ENOENT)
	}
	return held.Dev != now.Dev || held.Ino != now.Ino
}
