package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/crashpoint"
)

// A container's directory appears whole, record included, and goes away
// in one step: Create writes the record in a staging directory and renames
// it into place, Remove renames the directory away before it deletes it.
// Names starting with a dot are never containers.
const (
	stagePrefix = ".new-"  // a create's directory until its record is in place
	gonePrefix  = ".gone-" // a removed container's directory being deleted
)

// staging is a create's directory while the record is written; its
// creator holds an flock on it until the directory is renamed into place,
// so a clean can tell a live create from one that was killed.
type staging struct {
	dir string
	f   *os.File
}

// stage makes c's staging directory, locks it and writes c's record in it.
func (s *Store) stage(c Container) (*staging, error) {
	dir := filepath.Join(s.root, stagePrefix+c.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err == nil {
		// The record's data is synced; its name in the staging directory
		// is not, only the store's directory once the staging directory
		// is renamed into it (Create): a create costs one file and one
		// directory fsync, as it did when the record was renamed into the
		// container's directory. A power cut that loses the name leaves a
		// container directory without a record, which clean removes.
		var st *atomicfile.Staged
		if st, err = atomicfile.StageJSON(filepath.Join(dir, "container.json"), c, 0o600); err == nil {
			err = st.Commit()
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	return &staging{dir: dir, f: f}, nil
}

// close lets go of the staging directory's lock.
func (st *staging) close() { st.f.Close() }

// isLeftover says whether a directory entry of the store is not a
// container of its own: a staging or removed directory.
func isLeftover(name string) bool { return strings.HasPrefix(name, ".") }

// clean removes what interrupted creates and removals left, as List found
// them: removed directories, staging directories whose creator is gone (no
// one holds their lock), and, under the store's lock, container
// directories without a record (left by an older berth killed in a create
// or a removal: this one never makes them).
func (s *Store) clean(ctx context.Context, leftovers []string) {
	var bare []string
	for _, name := range leftovers {
		dir := filepath.Join(s.root, name)
		switch {
		case strings.HasPrefix(name, gonePrefix):
			os.RemoveAll(dir)
		case strings.HasPrefix(name, stagePrefix):
			if abandoned(dir) {
				os.RemoveAll(dir)
			}
		case !isLeftover(name):
			bare = append(bare, name)
		}
	}
	if len(bare) == 0 {
		return
	}
	l, err := s.lock(ctx)
	if err != nil {
		return
	}
	defer l.Unlock()
	for _, id := range bare {
		_, err := os.Stat(filepath.Join(s.Dir(id), "container.json"))
		if errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(s.Dir(id))
		}
	}
}

// abandoned says whether no process holds the staging directory's lock.
func abandoned(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// remove deletes a container's directory: renamed away first, so the
// container is gone at once and a crash in the deletion leaves a
// directory the next List removes.
func (s *Store) remove(id string) error {
	gone := filepath.Join(s.root, gonePrefix+id)
	if err := os.Rename(s.Dir(id), gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	crashpoint.At("container-removing")
	return os.RemoveAll(gone)
}
