package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
)

// Config is what a container is made from: the resolved process, its
// mounts, networks and ports. Fields may be added; old records still load.
type Config struct {
	Image      string            `json:"image"`    // reference as the user gave it
	ImageID    string            `json:"image_id"` // resolved image ID
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	StopSignal string            `json:"stop_signal,omitempty"`
	StopGrace  time.Duration     `json:"stop_grace,omitempty"` // 0 means the default of 10 s
	Labels     map[string]string `json:"labels,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	// VolumesFrom names containers ("name" or "name:ro") whose mounts this
	// one shares; CreateContainer turns them into Mounts.
	VolumesFrom []string     `json:"volumes_from,omitempty"`
	Files       []File       `json:"files,omitempty"`    // secrets and configs (files.go)
	Networks    []Attachment `json:"networks,omitempty"` // the first gets the default route
	Ports       []Port       `json:"ports,omitempty"`
	Expose      []string     `json:"expose,omitempty"`  // "80/tcp", sorted: the service's and the image's, published or not
	Restart     string       `json:"restart,omitempty"` // recorded; applied by a later shim
	// Model is what the orchestrator made the container from (compose keeps
	// the service's model here to explain a recreate); opaque to the engine.
	Model     json.RawMessage `json:"model,omitempty"`
	Net       Networking      `json:"net,omitzero"`       // network mode, DNS, hosts (networking.go)
	Run       Run             `json:"run,omitzero"`       // healthcheck, terminal, log (run.go)
	Security  Security        `json:"security,omitzero"`  // security keys (security.go)
	Resources Resources       `json:"resources,omitzero"` // cgroup limits (security.go)
}

// Mount is a named or anonymous volume, a bind mount or a tmpfs.
type Mount struct {
	Type     string `json:"type"`   // "volume", "bind" or "tmpfs"
	Source   string `json:"source"` // volume name or absolute host path
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// Anonymous marks a volume made for this container: CreateContainer
	// makes one when Source is empty, and removing the container with its
	// volumes removes it.
	Anonymous bool   `json:"anonymous,omitempty"`
	NoCopy    bool   `json:"nocopy,omitempty"`  // volume: no copy-up of the image's content
	SubPath   string `json:"subpath,omitempty"` // volume: mount this directory of it
	// CreateHostPath makes a missing bind source directory (Compose's
	// short syntax); otherwise a missing source is an error.
	CreateHostPath bool   `json:"create_host_path,omitempty"`
	Propagation    string `json:"propagation,omitempty"` // bind: rprivate (default), rshared, rslave...
	TmpfsSize      int64  `json:"tmpfs_size,omitempty"`  // bytes; 0: the kernel's default
	TmpfsMode      uint32 `json:"tmpfs_mode,omitempty"`  // 0: 1777
}

// Attachment connects the container to a network under extra names.
type Attachment struct {
	Network     string   `json:"network"`
	Aliases     []string `json:"aliases,omitempty"`
	IPv4Address string   `json:"ipv4_address,omitempty"`
	IPv6Address string   `json:"ipv6_address,omitempty"`
	MacAddress  string   `json:"mac_address,omitempty"`
}

// Port publishes a container port on the host. A zero HostPort is any
// free port; with HostPortEnd, the first free one of the range.
type Port struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      uint16 `json:"host_port"`
	HostPortEnd   uint16 `json:"host_port_end,omitempty"`
	ContainerPort uint16 `json:"container_port"`
	Protocol      string `json:"protocol"`
}

// Container is a stored record.
type Container struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Config  Config    `json:"config"`
}

// ShortID is the 12-character form docker ps shows.
func (c Container) ShortID() string { return c.ID[:12] }

// Store keeps one directory per container under its root.
type Store struct{ root string }

// Open returns the store rooted at root, creating it.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	return &Store{root: root}, nil
}

// Root is the directory that holds one directory per container.
func (s *Store) Root() string { return s.root }

// Dir is the container's state directory.
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

// LogPath is the container's json-file log, named as Docker names it.
func (s *Store) LogPath(id string) string { return filepath.Join(s.Dir(id), id+"-json.log") }

// StatusPath is where the shim records the container's status.
func (s *Store) StatusPath(id string) string { return filepath.Join(s.Dir(id), "status.json") }

func (s *Store) lock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, filepath.Join(s.root, ".lock"))
}

// Create stores a new record. Names are unique: a taken name is
// errdefs.ErrAlreadyExists (a Conflict in Docker's words). The record is
// written and synced in a staging directory before the store's lock is
// taken; under the lock only the names are read and the directory renamed
// into place, so the creates of one up do not queue behind each other's
// fsyncs, and a container's directory never exists without its record. A
// crash leaves at most a staging directory, which the next List removes
// (see clean).
func (s *Store) Create(ctx context.Context, name string, cfg Config) (Container, error) {
	if err := names.Object("container", name); err != nil {
		return Container{}, err
	}
	c := Container{ID: newID(), Name: name, Created: time.Now().UTC(), Config: cfg}
	st, err := s.stage(c)
	if err != nil {
		return Container{}, err
	}
	defer st.close()
	crashpoint.At("container-staged")
	err = s.commitNew(ctx, c, st.dir)
	if err == nil {
		crashpoint.At("container-committed")
		err = atomicfile.SyncDir(s.root)
	}
	if err != nil {
		os.RemoveAll(st.dir)
		os.RemoveAll(s.Dir(c.ID))
		return Container{}, err
	}
	return c, nil
}

// commitNew renames the staged directory of c into place unless c's name
// is taken.
func (s *Store) commitNew(ctx context.Context, c Container, staged string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	all, err := readNames(s.root)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == c.Name {
			return fmt.Errorf("container name %q is already in use by %s: %w", c.Name, Container{ID: o.ID}.ShortID(), errdefs.ErrAlreadyExists)
		}
	}
	return os.Rename(staged, s.Dir(c.ID))
}

// Rename gives a container a new name; names stay unique (a taken one is
// errdefs.ErrAlreadyExists).
func (s *Store) Rename(ctx context.Context, id, name string) (Container, error) {
	if err := names.Object("container", name); err != nil {
		return Container{}, err
	}
	l, err := s.lock(ctx)
	if err != nil {
		return Container{}, err
	}
	defer l.Unlock()
	all, err := s.List(ctx)
	if err != nil {
		return Container{}, err
	}
	var c *Container
	for i := range all {
		switch {
		case all[i].ID == id:
			c = &all[i]
		case all[i].Name == name:
			return Container{}, fmt.Errorf("container name %q is already in use by %s: %w", name, all[i].ShortID(), errdefs.ErrAlreadyExists)
		}
	}
	if c == nil {
		return Container{}, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	c.Name = name
	if err := atomicfile.WriteJSON(filepath.Join(s.Dir(c.ID), "container.json"), *c, 0o600); err != nil {
		return Container{}, err
	}
	return *c, nil
}

// Get finds a container by ID, unique ID prefix or name.
func (s *Store) Get(ctx context.Context, ref string) (Container, error) {
	if len(ref) == 64 && strings.Trim(ref, "0123456789abcdef") == "" {
		// A full ID (what the engine passes around): its own record,
		// without reading every other one.
		var c Container
		if err := atomicfile.ReadJSON(filepath.Join(s.Dir(ref), "container.json"), &c); err == nil && c.ID == ref {
			return c, nil
		}
	}
	all, err := s.List(ctx)
	if err != nil {
		return Container{}, err
	}
	var found []Container
	for _, c := range all {
		if c.ID == ref || c.Name == ref {
			return c, nil
		}
		if len(ref) >= 4 && strings.HasPrefix(c.ID, ref) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Container{}, fmt.Errorf("container %q: %w", ref, errdefs.ErrNotFound)
	}
	return Container{}, fmt.Errorf("container %q is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
}

// List returns every record, oldest first. What an interrupted create or
// removal left is skipped, and cleaned (see clean).
func (s *Store) List(ctx context.Context) ([]Container, error) {
	out, leftovers, err := readRecords[Container](s.root)
	if err != nil {
		return nil, err
	}
	if len(leftovers) > 0 {
		s.clean(ctx, leftovers)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Networking returns each container's networking settings by ID, decoding
// only that part of every record: the DNS publication reads them all at
// each batch of starts.
func (s *Store) Networking() (map[string]Networking, error) {
	rs, _, err := readRecords[struct {
		ID     string `json:"id"`
		Config struct {
			Net Networking `json:"net"`
		} `json:"config"`
	}](s.root)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Networking, len(rs))
	for _, r := range rs {
		out[r.ID] = r.Config.Net
	}
	return out, nil
}

// readRecords decodes every readable record under root into a T (all of
// Container, or only the fields a caller needs), in directory order.
// leftovers names the directories that are no container's: a create's or
// a removal's (see clean), and those without a record.
func readRecords[T any](root string) (out []T, leftovers []string, err error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if isLeftover(e.Name()) {
			leftovers = append(leftovers, e.Name())
			continue
		}
		var c T
		if err := atomicfile.ReadJSON(filepath.Join(root, e.Name(), "container.json"), &c); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				leftovers = append(leftovers, e.Name())
			}
			continue // unreadable
		}
		out = append(out, c)
	}
	return out, leftovers, nil
}

// Remove deletes the record and everything in its directory.
func (s *Store) Remove(ctx context.Context, id string) error {
	if len(id) != 64 {
		return fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return s.remove(id)
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
