package image

import (
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// refsMemo keeps the last refs.json a Store decoded, with the identity of
// the file it came from, so that the reads of one command (a build reads
// its base image, then checks its tags before creating the image) decode
// the file once. refs.json is only ever replaced whole (atomicfile), so a
// file with the same device, inode, size and times holds the same bytes,
// with one exception: a replacement whose new file reuses the inode of one
// replaced before it, within the same timestamp tick. A file changed less
// than refsMemoMargin before it was read is therefore not kept.
type refsMemo struct {
	mu   sync.Mutex
	id   fileID
	refs *refs // never handed out: readers get a deep copy
}

// refsMemoMargin is far above the timestamp granularity of the file
// systems Berth keeps state on (nanoseconds, or a kernel tick of at most
// 10 ms).
const refsMemoMargin = 100 * time.Millisecond

// fileID is what distinguishes one version of a file replaced by rename
// from another.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

func identify(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}

// get returns a copy of the memo when it is of the file id names.
func (m *refsMemo) get(id fileID) (refs, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs == nil || m.id != id {
		return refs{}, false
	}
	return m.refs.clone(), true
}

// put keeps a copy of r, decoded from the file id names, read at or
// after readAt.
func (m *refsMemo) put(id fileID, r refs, readAt time.Time) {
	if time.Unix(0, id.ctime).After(readAt.Add(-refsMemoMargin)) {
		return
	}
	c := r.clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id, m.refs = id, &c
}

// refsDecodes counts the decodes of refs.json (for tests).
var refsDecodes atomic.Int64

// clone is a copy of r that shares no memory with it, so its maps and
// records can be changed (a read-modify-write) or handed out.
func (r refs) clone() refs {
	out := refs{images: make(map[string]record, len(r.images)), tags: maps.Clone(r.tags)}
	for id, rec := range r.images {
		rec.Image = rec.Image.clone()
		out.images[id] = rec
	}
	return out
}

// clone is a copy of img that shares no memory with it.
func (img Image) clone() Image {
	img.RepoDigests = slices.Clone(img.RepoDigests)
	img.Tags = slices.Clone(img.Tags)
	img.Config = img.Config.clone()
	img.DiffIDs = slices.Clone(img.DiffIDs)
	img.ChainIDs = slices.Clone(img.ChainIDs)
	img.Layers = slices.Clone(img.Layers)
	return img
}

func (c Config) clone() Config {
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Labels = maps.Clone(c.Labels)
	c.ExposedPorts = slices.Clone(c.ExposedPorts)
	c.Volumes = slices.Clone(c.Volumes)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	return c
}
