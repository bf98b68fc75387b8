package engine

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkPropagation refuses a bind whose propagation cannot work from its
// source, as Docker does: shared propagation needs a source on a shared
// mount, slave propagation a shared or slave one. On a host whose mounts
// are private (no systemd, some container hosts), the bind would be
// shared only with itself, and neither side would see the other's mounts.
func checkPropagation(name, src, propagation string) error {
	var need []string
	switch propagation {
	case "shared", "rshared":
		need = []string{"shared:"}
	case "slave", "rslave":
		need = []string{"shared:", "master:"}
	default:
		return nil
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(real))
	if err != nil {
		return err
	}
	var under *mountinfo.Info
	for _, m := range mounts {
		if under == nil || len(m.Mountpoint) >= len(under.Mountpoint) {
			under = m
		}
	}
	if under == nil {
		return fmt.Errorf("container %s: bind %s: no mount holds it", name, src)
	}
	for _, opt := range strings.Fields(under.Optional) {
		for _, n := range need {
			if strings.HasPrefix(opt, n) {
				return nil
			}
		}
	}
	kind := "shared"
	if len(need) > 1 {
		kind = "shared or slave"
	}
	return fmt.Errorf("container %s: bind %s: propagation %s needs a %s mount, and %s is mounted on %s, which is not (mount --make-shared %s): %w",
		name, src, propagation, kind, src, under.Mountpoint, under.Mountpoint, errdefs.ErrFailedPrecondition)
}

// rootPropagation makes the container's mount namespace shared when a
// bind asks for shared propagation, as Docker does: the namespace is
// otherwise made a slave of the host's, and the bind would receive the
// host's mounts but never pass its own back.
func rootPropagation(spec *specs.Spec) {
	for _, m := range spec.Mounts {
		if slices.Contains(m.Options, "rshared") || slices.Contains(m.Options, "shared") {
			if spec.Linux == nil {
				spec.Linux = &specs.Linux{}
			}
			spec.Linux.RootfsPropagation = "rshared"
			return
		}
	}
}
