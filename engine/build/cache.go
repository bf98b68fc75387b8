package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// Cache holds the result of each build step that changed the file system,
// keyed by everything the step depends on: the key of the step before
// it, the instruction with its arguments expanded, the build arguments in
// scope and the content of the files it reads. A result is the layer the
// step made (none if it changed nothing) and its history entry, so a hit
// rebuilds exactly the image the first build made.
type Cache struct {
	dir string
}

// entry is one cached step.
type entry struct {
	Layer   *image.Layer `json:"layer,omitempty"`
	History v1.History   `json:"history"`
}

// OpenCache opens (creating) the cache kept in dir.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// key derives a step's key from its parent's and its own inputs, each
// written as JSON so no two different inputs share a key.
func key(parent string, parts ...any) string {
	h := sha256.New()
	h.Write([]byte(parent))
	for _, p := range parts {
		b, _ := json.Marshal(p)
		h.Write([]byte{0})
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Cache) path(k string) string { return filepath.Join(c.dir, k+".json") }

// get returns the entry under k whose layer blob is still stored.
func (c *Cache) get(k string, images *image.Store) (entry, bool) {
	var e entry
	if err := atomicfile.ReadJSON(c.path(k), &e); err != nil {
		return entry{}, false
	}
	if e.Layer != nil && !images.HasLayer(*e.Layer) {
		return entry{}, false
	}
	// The file's time says when the entry was last used, for Prune; no
	// sync: losing it in a crash only makes the entry look older.
	now := time.Now()
	_ = os.Chtimes(c.path(k), now, now)
	return e, true
}

func (c *Cache) put(k string, e entry) error {
	if err := atomicfile.WriteJSON(c.path(k), e, 0o600); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// Blobs lists the layer blobs the cache refers to, so that image garbage
// collection keeps them.
func (c *Cache) Blobs(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := c.each(ctx, func(_ string, e entry, _ time.Time) error {
		if e.Layer != nil {
			out[e.Layer.Digest] = true
		}
		return nil
	})
	return out, err
}

// each calls fn with every entry and the time it was last used.
func (c *Cache) each(ctx context.Context, fn func(k string, e entry, used time.Time) error) error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	for _, d := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, ok := strings.CutSuffix(d.Name(), ".json")
		if !ok {
			continue
		}
		var e entry
		info, err := d.Info()
		if err == nil {
			err = atomicfile.ReadJSON(filepath.Join(c.dir, d.Name()), &e)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("build cache %s: %w", d.Name(), err)
		}
		if err := fn(k, e, info.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Entries int
}

// Prune forgets cached steps not used for at least keep (all of them when
// keep is 0). Their blobs and layers go with the next image prune, or at
// once when the caller runs one.
func (c *Cache) Prune(ctx context.Context, keep time.Duration) (PruneResult, error) {
	var out PruneResult
	cut := time.Now().Add(-keep)
	err := c.each(ctx, func(k string, _ entry, used time.Time) error {
		if keep > 0 && used.After(cut) {
			return nil
		}
		if err := os.Remove(c.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		out.Entries++
		return nil
	})
	return out, err
}
