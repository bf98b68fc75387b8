package container

import (
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// nameCache keeps the ID and name of each record this process has read,
// with the identity of the file they came from, so a create checks the
// names of the others without decoding every record again: up -d of 20
// services decoded 190 records in its creates, a growing share of each
// create's CPU. A record is only ever replaced by renaming a new file over
// it, so a file with the same inode, size, modification and change time
// is the one already read; any other is read again. Entries of removed
// containers go at the next read.
type nameCache struct {
	mu      sync.Mutex
	entries map[string]nameEntry // by record path
}

type nameEntry struct {
	file     fileID
	ID, Name string
}

// fileID is what tells one version of a record from another.
type fileID struct {
	ino, size    int64
	mtime, ctime unix.Timespec
}

// nameOf is a record's ID and name.
type nameOf struct{ ID, Name string }

// read returns the ID and name of every readable record under root, in
// directory order, as readRecords would.
func (c *nameCache) read(root string) ([]nameOf, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]nameEntry, len(ents))
	var out []nameOf
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(root, e.Name(), "container.json")
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue // none yet (Orphans)
		}
		id := fileID{ino: int64(st.Ino), size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
		ent, ok := c.entries[p]
		if !ok || ent.file != id {
			var r nameOf
			if err := atomicfile.ReadJSON(p, &r); err != nil {
				continue // unreadable
			}
			ent = nameEntry{file: id, ID: r.ID, Name: r.Name}
		}
		seen[p] = ent
		out = append(out, nameOf{ent.ID, ent.Name})
	}
	c.entries = seen
	return out, nil
}
