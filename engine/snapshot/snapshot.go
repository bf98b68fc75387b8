package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Store holds layers under root/layers/<chain ID hex>/ and container
// layers under root/containers/<key>/{upper,work}.
type Store struct {
	root string
}

// Mount is one mount(2) call: like containerd's mount.Mount, a value the
// caller (or MountAll) performs later.
type Mount struct {
	Type, Source string
	Options      []string
}

const (
	layersDir     = "layers"
	containersDir = "containers"
	locksDir      = "locks"
	tmpDir        = "tmp"
)

// Open opens (creating if needed) the store under root.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store %s: %w", root, err)
	}
	// overlayfs splits its options on ',' and lowerdir on ':'.
	if strings.ContainsAny(abs, ",:") {
		return nil, fmt.Errorf("snapshot root %q: contains ',' or ':': %w", abs, errdefs.ErrInvalidArgument)
	}
	s := &Store{root: abs}
	for _, d := range []string{abs, s.path(layersDir), s.path(containersDir), s.path(locksDir), s.path(tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open snapshot store %s: %w", root, err)
		}
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// chainHex validates a chain ID ("sha256:<hex>" or bare hex) and returns
// the hex part used as its directory name.
func chainHex(chainID string) (string, error) {
	h := strings.TrimPrefix(chainID, "sha256:")
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("chain id %q: %w", chainID, errdefs.ErrInvalidArgument)
	}
	return h, nil
}

func (s *Store) layerPath(chainID string) (string, error) {
	h, err := chainHex(chainID)
	if err != nil {
		return "", err
	}
	return s.path(layersDir, h), nil
}

// HasLayer reports whether the layer with chainID is unpacked.
func (s *Store) HasLayer(chainID string) bool {
	p, err := s.layerPath(chainID)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// EnsureLayer unpacks a layer once. If it exists it returns at once;
// otherwise it calls unpack on an empty temporary directory and renames that
// into place, so a layer is either absent or complete. A lock per chain ID
// makes concurrent callers, in this or other processes, unpack it only once.
func (s *Store) EnsureLayer(ctx context.Context, chainID string, unpack func(dir string) error) error {
	h, err := chainHex(chainID)
	if err != nil {
		return err
	}
	final := s.path(layersDir, h)
	if s.HasLayer(chainID) {
		return nil
	}
	l, err := lockfile.Acquire(ctx, s.path(locksDir, h+".lock"))
	if err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	defer l.Unlock()
	if s.HasLayer(chainID) {
		return nil // another caller unpacked it while we waited
	}
	// Leftovers of this chain are from a caller that died mid-unpack: the
	// lock we hold means nobody else is using them.
	if stale, err := filepath.Glob(s.path(tmpDir, h+"-*")); err == nil {
		for _, p := range stale {
			os.RemoveAll(p)
		}
	}
	tmp, err := os.MkdirTemp(s.path(tmpDir), h+"-")
	if err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	// The layer directory becomes "/" of containers when it is the only
	// lower layer and no upper layer says otherwise; unpack may change it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	if err := unpack(tmp); err != nil {
		return fmt.Errorf("unpack layer %s: %w", chainID, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	// Flush the unpacked files before the rename publishes the layer, so a
	// crash never leaves a complete-looking layer with empty files.
	if err := syncfs(tmp); err != nil {
		return fmt.Errorf("layer %s: sync: %w", chainID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	ok = true
	if err := atomicfile.SyncDir(s.path(layersDir)); err != nil {
		return fmt.Errorf("layer %s: %w", chainID, err)
	}
	return nil
}

func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// RemoveLayer deletes an unpacked layer; removing an absent one is not an
// error. Callers make sure no container still uses it.
func (s *Store) RemoveLayer(ctx context.Context, chainID string) error {
	h, err := chainHex(chainID)
	if err != nil {
		return err
	}
	l, err := lockfile.Acquire(ctx, s.path(locksDir, h+".lock"))
	if err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	defer l.Unlock()
	// Rename first so HasLayer never sees a half-deleted layer.
	trash, err := os.MkdirTemp(s.path(tmpDir), "rm-"+h+"-")
	if err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	defer os.RemoveAll(trash)
	if err := os.Rename(s.path(layersDir, h), filepath.Join(trash, h)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	return nil
}

func (s *Store) containerPath(key string) (string, error) {
	if err := names.Object("snapshot key", key); err != nil {
		return "", err
	}
	return s.path(containersDir, key), nil
}

// Prepare creates (idempotently) the writable layer of key and returns the
// overlay mount that stacks it on chainIDs (bottom to top, as in an image).
// With no layers (a build step on scratch) it is a bind mount of the
// writable layer alone.
func (s *Store) Prepare(ctx context.Context, key string, chainIDs []string) ([]Mount, error) {
	dir, err := s.containerPath(key)
	if err != nil {
		return nil, err
	}
	lower := make([]string, 0, len(chainIDs))
	for i := len(chainIDs) - 1; i >= 0; i-- { // overlayfs lists the top layer first
		p, err := s.layerPath(chainIDs[i])
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", key, err)
		}
		if !s.HasLayer(chainIDs[i]) {
			return nil, fmt.Errorf("prepare %q: layer %s: %w", key, chainIDs[i], errdefs.ErrNotFound)
		}
		lower = append(lower, p)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("prepare %q: %w", key, err)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	// upper's root gives the container's "/" its mode: it must be 0755,
	// whatever the umask.
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("prepare %q: %w", key, err)
		}
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return nil, fmt.Errorf("prepare %q: %w", key, err)
	}
	if len(lower) == 0 {
		return []Mount{{Type: "bind", Source: upper, Options: []string{"bind"}}}, nil
	}
	return []Mount{{
		Type:   "overlay",
		Source: "overlay",
		Options: []string{
			"lowerdir=" + strings.Join(lower, ":"),
			"upperdir=" + upper,
			"workdir=" + work,
		},
	}}, nil
}

// Remove deletes key's writable layer; removing an absent one is not an
// error. The caller unmounts first.
func (s *Store) Remove(ctx context.Context, key string) error {
	dir, err := s.containerPath(key)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return nil
}

// Layers lists the chain IDs of the unpacked layers.
func (s *Store) Layers() ([]string, error) {
	ents, err := os.ReadDir(s.path(layersDir))
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, err := chainHex(e.Name()); err == nil && e.IsDir() {
			out = append(out, "sha256:"+e.Name())
		}
	}
	return out, nil
}

// CleanTemp removes what a killed unpack or layer removal left in the
// temporary directory ("<chain hex>-*" and "rm-<chain hex>-*"), each only
// when no process holds its layer's lock: one that does is still using it.
func (s *Store) CleanTemp(ctx context.Context) error {
	ents, err := os.ReadDir(s.path(tmpDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, _, _ := strings.Cut(strings.TrimPrefix(e.Name(), "rm-"), "-")
		if _, err := chainHex(h); err != nil {
			continue // not ours
		}
		l, free, err := lockfile.TryAcquire(s.path(locksDir, h+".lock"))
		if err != nil {
			return err
		}
		if !free {
			continue
		}
		err = os.RemoveAll(s.path(tmpDir, e.Name()))
		l.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
