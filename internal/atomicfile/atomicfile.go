// Package atomicfile writes files so that readers see the old content or the
// new content, never a torn mix, even across a crash.
package atomicfile

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Write replaces path with data: temp file in the same directory, fsync,
// rename, then fsync of the directory so the rename itself is durable.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// Replace replaces path with data as Write does (a reader sees the old
// content or the new, never a mix) but does not make it durable: for files
// that are made again before they are needed after a crash (what lives in
// $BERTH_RUN, a container's files rewritten at each start).
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

// ReplaceJSON marshals v compactly and writes it with Replace.
func ReplaceJSON(path string, v any, perm os.FileMode) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return Replace(path, data, perm)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	st, err := stage(path, data, perm, durable)
	if err != nil {
		return err
	}
	if err := st.Commit(); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return SyncDir(filepath.Dir(path))
}

// Staged is new content for a file, written and made durable beside it
// but not yet in its place: the slow part of Write done before the caller
// takes a lock, so that only the rename (Commit) happens under it.
type Staged struct {
	tmp, path string
}

// Stage writes data to a temporary file beside path and fsyncs it. Commit
// or Abort it; after Commit, SyncDir of path's directory makes the rename
// durable, as Write does.
func Stage(path string, data []byte, perm os.FileMode) (*Staged, error) {
	return stage(path, data, perm, true)
}

// StageJSON marshals v as WriteJSON does and stages it.
func StageJSON(path string, v any, perm os.FileMode) (*Staged, error) {
	data, err := indentJSON(v)
	if err != nil {
		return nil, err
	}
	return Stage(path, data, perm)
}

func stage(path string, data []byte, perm os.FileMode, durable bool) (*Staged, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	st := &Staged{tmp: f.Name(), path: path}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		st.Abort()
		return nil, err
	}
	return st, nil
}

// Commit puts the staged content in place: readers see the old content or
// the new.
func (s *Staged) Commit() error {
	if err := os.Rename(s.tmp, s.path); err != nil {
		s.Abort()
		return err
	}
	return nil
}

// Abort removes the staged content.
func (s *Staged) Abort() { os.Remove(s.tmp) }

// WriteJSON marshals v with indentation and writes it atomically.
func WriteJSON(path string, v any, perm os.FileMode) error {
	data, err := indentJSON(v)
	if err != nil {
		return err
	}
	return Write(path, data, perm)
}

func indentJSON(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	return append(data, '\n'), err
}

// ReadJSON reads path into v; a missing file is returned as os.ErrNotExist.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// SyncDir fsyncs a directory so that entries created or renamed in it survive
// a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
