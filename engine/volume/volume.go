// Package volume manages named volumes: a data directory per volume plus a
// small JSON record, and the copy-up of image content on first mount.
package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
)

const (
	recordFile = "volume.json"
	dataDir    = "_data"
	// lockDir sits beside the volumes rather than inside them so that Remove
	// can delete a whole volume directory while holding its lock. Its name
	// starts with a dot, which names.Object never accepts, so it cannot
	// collide with a volume.
	lockDir = ".locks"
	// trashPrefix marks a volume directory being deleted; like lockDir it
	// cannot be a volume name.
	trashPrefix = ".trash-"
)

// Store holds named volumes under one root directory.
type Store struct {
	root string
}

// Volume describes a named volume.
type Volume struct {
	Name       string
	Labels     map[string]string
	Options    map[string]string // the local driver's driver_opts
	Mountpoint string
	Created    time.Time
}

// record is the on-disk form of a volume.
type record struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	Created time.Time         `json:"created"`
	// Initialised is set once the volume has received image content (or
	// content of its own), after which copy-up never runs again.
	Initialised bool `json:"initialised,omitempty"`
}

// Open returns the store rooted at root, creating the directory if needed.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("volume root is empty: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("volume root %s: %w", abs, err)
	}
	return &Store{root: abs}, nil
}

func (s *Store) dir(name string) string        { return filepath.Join(s.root, name) }
func (s *Store) recordPath(name string) string { return filepath.Join(s.root, name, recordFile) }

func (s *Store) lock(ctx context.Context, name string) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, filepath.Join(s.root, lockDir, name+".lock"))
}

func (s *Store) volume(r record) Volume {
	mp := filepath.Join(s.dir(r.Name), dataDir)
	if dev, ok := bindDevice(r.Options); ok {
		mp = dev
	}
	return Volume{
		Name:       r.Name,
		Labels:     r.Labels,
		Options:    r.Options,
		Mountpoint: mp,
		Created:    r.Created,
	}
}

// bindDevice is the host directory a volume with driver options
// "type: none, o: bind, device: /path" stands for (Docker's local driver
// bind-mounts it).
func bindDevice(opts map[string]string) (string, bool) {
	if len(opts) == 0 || opts["device"] == "" || (opts["type"] != "none" && opts["type"] != "") {
		return "", false
	}
	for _, o := range strings.Split(opts["o"], ",") {
		if o == "bind" || o == "rbind" {
			return opts["device"], true
		}
	}
	return "", false
}

// checkOptions accepts the local driver's options Berth honours: none, or a
// bind of an existing absolute host directory.
func checkOptions(name string, opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	dev, ok := bindDevice(opts)
	if !ok {
		return fmt.Errorf("volume %q: driver_opts %v: only type none, o bind and device are supported yet: %w", name, opts, errdefs.ErrNotImplemented)
	}
	if !filepath.IsAbs(dev) {
		return fmt.Errorf("volume %q: driver_opts device %q must be an absolute path: %w", name, dev, errdefs.ErrInvalidArgument)
	}
	if fi, err := os.Stat(dev); err != nil || !fi.IsDir() {
		return fmt.Errorf("volume %q: driver_opts device %q is not a directory: %w", name, dev, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Store) read(name string) (record, error) {
	var r record
	if err := atomicfile.ReadJSON(s.recordPath(name), &r); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return r, fmt.Errorf("volume %q: %w", name, errdefs.ErrNotFound)
		}
		return r, fmt.Errorf("volume %q: %w", name, err)
	}
	return r, nil
}

// Create makes a new volume. If it already exists, the existing volume is
// returned together with an error wrapping errdefs.ErrAlreadyExists, so
// callers that only need the volume to exist can ignore that class.
func (s *Store) Create(ctx context.Context, name string, labels map[string]string) (Volume, error) {
	return s.CreateWithOptions(ctx, name, labels, nil)
}

// CreateWithOptions is Create with the local driver's options (Compose's
// driver_opts).
func (s *Store) CreateWithOptions(ctx context.Context, name string, labels, opts map[string]string) (Volume, error) {
	if err := names.Object("volume", name); err != nil {
		return Volume{}, err
	}
	if err := checkOptions(name, opts); err != nil {
		return Volume{}, err
	}
	l, err := s.lock(ctx, name)
	if err != nil {
		return Volume{}, err
	}
	defer l.Unlock()

	if r, err := s.read(name); err == nil {
		return s.volume(r), fmt.Errorf("volume %q: %w", name, errdefs.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return Volume{}, err
	}
	// A directory without a record is the residue of a crash during Create;
	// reusing it is safe because the record is written last.
	if err := os.MkdirAll(filepath.Join(s.dir(name), dataDir), 0o755); err != nil {
		return Volume{}, fmt.Errorf("volume %q: %w", name, err)
	}
	r := record{Name: name, Driver: "local", Labels: copyLabels(labels), Options: copyLabels(opts), Created: time.Now().UTC()}
	if err := atomicfile.WriteJSON(s.recordPath(name), r, 0o600); err != nil {
		return Volume{}, fmt.Errorf("volume %q: %w", name, err)
	}
	return s.volume(r), nil
}

func copyLabels(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// Get returns the named volume or an error wrapping errdefs.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	if err := names.Object("volume", name); err != nil {
		return Volume{}, err
	}
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	r, err := s.read(name)
	if err != nil {
		return Volume{}, err
	}
	return s.volume(r), nil
}

// List returns every volume, sorted by name. Directories without a record
// (a Create or Remove in progress) are skipped.
func (s *Store) List(ctx context.Context) ([]Volume, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || names.Object("volume", e.Name()) != nil {
			continue
		}
		r, err := s.read(e.Name())
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.volume(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the volume and its data, or returns an error wrapping
// errdefs.ErrNotFound. Whether a container still uses the volume is the
// caller's question: the store keeps no references.
func (s *Store) Remove(ctx context.Context, name string) error {
	return s.RemoveUnless(ctx, name, nil)
}

// RemoveUnless is Remove, unless inUse (called with the volume's lock held,
// when not nil) returns an error, which is then returned.
func (s *Store) RemoveUnless(ctx context.Context, name string, inUse func() error) error {
	if err := names.Object("volume", name); err != nil {
		return err
	}
	l, err := s.lock(ctx, name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if _, err := s.read(name); err != nil {
		return err
	}
	if inUse != nil {
		if err := inUse(); err != nil {
			return err
		}
	}
	// Renaming first makes the removal look atomic to List and Get: a crash
	// in the middle of RemoveAll leaves only a trash directory behind.
	trash, err := os.MkdirTemp(s.root, trashPrefix+name+"-")
	if err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	target := filepath.Join(trash, name)
	if err := os.Rename(s.dir(name), target); err != nil {
		os.Remove(trash)
		return fmt.Errorf("volume %q: %w", name, err)
	}
	if err := atomicfile.SyncDir(s.root); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("volume %q: remove data: %w", name, err)
	}
	return nil
}

// CopyUpOnce gives a volume the image's content at its mount target, as
// Docker does on first mount. src is the host path of that target inside the
// container's root filesystem, already resolved securely by the caller. The
// copy happens only while the volume has never been initialised and its data
// directory is empty; a missing or non-directory src copies nothing and
// leaves the volume uninitialised, so a later mount from another image can
// still fill it.
func (s *Store) CopyUpOnce(ctx context.Context, name string, src string) error {
	if err := names.Object("volume", name); err != nil {
		return err
	}
	l, err := s.lock(ctx, name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := s.read(name)
	if err != nil {
		return err
	}
	if r.Initialised {
		return nil
	}
	data := s.volume(r).Mountpoint
	empty, err := isEmptyDir(data)
	if err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	if !empty {
		// Something already wrote to the volume (a container, or a copy-up
		// that crashed before the record was updated): never overwrite it.
		r.Initialised = true
		return s.writeRecord(r)
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %q: copy-up source: %w", name, err)
	}
	if err := copyTree(ctx, src, data); err != nil {
		return fmt.Errorf("volume %q: copy-up from %s: %w", name, src, err)
	}
	r.Initialised = true
	return s.writeRecord(r)
}

func (s *Store) writeRecord(r record) error {
	if err := atomicfile.WriteJSON(s.recordPath(r.Name), r, 0o600); err != nil {
		return fmt.Errorf("volume %q: %w", r.Name, err)
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	entries, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(entries) == 0, nil
}
