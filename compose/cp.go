package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/fscopy"
)

// CopyRequest is berth cp's input: one of Source and Dest is
// "SERVICE:PATH", the other a local path or "-" (a tar stream).
type CopyRequest struct {
	Source, Dest string
	Index        int  // replica number; 0: every replica (in), the first (out)
	All          bool // the service's one-off containers (run) too
	Archive      bool // keep owners (-a)
	FollowLink   bool // follow a symlink given as the source (-L)
	Stdin        io.Reader
	Stdout       io.Writer
}

// copyArg is one side of a copy.
type copyArg struct {
	service, path string // service empty: local
}

func parseCopyArg(s string) copyArg {
	if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return copyArg{path: s}
	}
	if svc, p, ok := strings.Cut(s, ":"); ok && svc != "" && !strings.Contains(svc, "/") {
		return copyArg{service: svc, path: p}
	}
	return copyArg{path: s}
}

// Copy copies files between a service's container (running or not) and
// the local file system, with docker cp's rules for names: into an
// existing directory under the source's name, over a file, or to a new
// name; "dir/." copies a directory's contents.
func Copy(ctx context.Context, e *engine.Engine, p *types.Project, r CopyRequest) error {
	src, dst := parseCopyArg(r.Source), parseCopyArg(r.Dest)
	switch {
	case src.service != "" && dst.service != "":
		return fmt.Errorf("copying between containers is not supported: %w", errdefs.ErrInvalidArgument)
	case src.service == "" && dst.service == "":
		return fmt.Errorf("one of source and destination must be SERVICE:PATH: %w", errdefs.ErrInvalidArgument)
	}
	if src.service != "" {
		cs, err := copyTargets(ctx, e, p, src.service, r)
		if err != nil {
			return err
		}
		return copyOut(ctx, e, cs[0], src.path, dst.path, r)
	}
	cs, err := copyTargets(ctx, e, p, dst.service, r)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := copyIn(ctx, e, c, src.path, dst.path, r); err != nil {
			return err
		}
	}
	return nil
}

// copyTargets are the containers of a service a copy goes to or comes
// from, running or not, as Compose picks them: replica Index, or (Index
// 0) all of them in number order, with the one-off containers of run
// when All. A copy out takes the first.
func copyTargets(ctx context.Context, e *engine.Engine, p *types.Project, service string, r CopyRequest) ([]engine.Info, error) {
	if _, ok := p.Services[service]; !ok {
		return nil, fmt.Errorf("no such service: %s: %w", service, errdefs.ErrNotFound)
	}
	o := withoutOneOff
	if r.All {
		o = withOneOff
	}
	infos, err := projectContainers(ctx, e, p.Name, o, service)
	if err != nil {
		return nil, err
	}
	if r.Index > 0 {
		infos = slices.DeleteFunc(infos, func(i engine.Info) bool { return observed(i).Number != r.Index })
		if len(infos) == 0 {
			return nil, fmt.Errorf("service %q has no container number %d: %w", service, r.Index, errdefs.ErrNotFound)
		}
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("no container found for service %q: %w", service, errdefs.ErrNotFound)
	}
	// Replicas by number, one-off containers (no number) after them.
	rank := func(i engine.Info) int {
		if n := observed(i).Number; n > 0 {
			return n
		}
		return math.MaxInt
	}
	slices.SortStableFunc(infos, func(a, b engine.Info) int { return cmp.Compare(rank(a), rank(b)) })
	return infos, nil
}

// target is where a copy lands: a directory and the top entry's name in
// it ("" to copy a directory's contents into it).
type target struct{ dir, name string }

// place applies docker cp's rules. srcDir says the source is a directory,
// contents that it ends in "/."; dst is what is at the destination.
func place(srcPath string, srcDir, contents bool, dstPath string, dst fscopy.Stat) (target, error) {
	switch {
	case contents && !srcDir:
		return target{}, fmt.Errorf("%s: not a directory: %w", srcPath, errdefs.ErrInvalidArgument)
	case dst.Exists && dst.Dir:
		if contents {
			return target{dir: dstPath}, nil
		}
		return target{dir: dstPath, name: path.Base(path.Clean(srcPath))}, nil
	case dst.Exists && srcDir:
		return target{}, fmt.Errorf("cannot copy a directory to the file %s: %w", dstPath, errdefs.ErrInvalidArgument)
	case !dst.Exists && strings.HasSuffix(dstPath, "/") && !srcDir:
		return target{}, fmt.Errorf("destination directory %s does not exist: %w", dstPath, errdefs.ErrNotFound)
	}
	clean := path.Clean(dstPath)
	return target{dir: path.Dir(clean), name: path.Base(clean)}, nil
}

func copyOut(ctx context.Context, e *engine.Engine, c engine.Info, srcPath, dstPath string, r CopyRequest) error {
	st, err := e.StatContainerPath(ctx, c.ID, srcPath)
	if err != nil {
		return err
	}
	if !st.Exists {
		return fmt.Errorf("could not find the file %s in container %s: %w", srcPath, c.Name, errdefs.ErrNotFound)
	}
	contents := strings.HasSuffix(srcPath, "/.")
	if dstPath == "-" {
		name := path.Base(path.Clean(srcPath))
		if contents {
			name = ""
		}
		return e.CopyFromContainer(ctx, c.ID, srcPath, fscopy.ArchiveOptions{Name: name, FollowLink: r.FollowLink}, r.Stdout)
	}
	t, err := place(srcPath, st.Dir, contents, dstPath, localStat(dstPath))
	if err != nil {
		return err
	}
	root, err := os.OpenFile(t.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dstPath, err)
	}
	defer root.Close()
	// What comes out of the container is untrusted: it is extracted
	// confined to the destination directory.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(e.CopyFromContainer(ctx, c.ID, srcPath, fscopy.ArchiveOptions{Name: t.name, FollowLink: r.FollowLink}, pw))
	}()
	err = fscopy.Extract(root, "/", pr, fscopy.ExtractOptions{KeepOwner: r.Archive, UID: os.Getuid(), GID: os.Getgid()})
	pr.CloseWithError(err)
	return err
}

func copyIn(ctx context.Context, e *engine.Engine, c engine.Info, srcPath, dstPath string, r CopyRequest) error {
	o := fscopy.ExtractOptions{KeepOwner: r.Archive} // root in the container otherwise, as Docker
	dst, err := e.StatContainerPath(ctx, c.ID, dstPath)
	if err != nil {
		return err
	}
	if srcPath == "-" {
		if !dst.Exists || !dst.Dir {
			return fmt.Errorf("destination %s in container %s must be a directory to extract an archive into: %w", dstPath, c.Name, errdefs.ErrInvalidArgument)
		}
		return e.CopyToContainer(ctx, c.ID, dstPath, r.Stdin, o)
	}
	st := localStat(srcPath)
	if !st.Exists {
		return fmt.Errorf("%s: %w", srcPath, os.ErrNotExist)
	}
	contents := strings.HasSuffix(srcPath, "/.")
	t, err := place(srcPath, st.Dir, contents, dstPath, dst)
	if err != nil {
		return err
	}
	// Into a new directory, "dir/." is the directory under the new name.
	contents = contents && dst.Exists
	srcRoot, srcRel := filepath.Dir(filepath.Clean(srcPath)), filepath.Base(filepath.Clean(srcPath))
	if contents {
		srcRoot, srcRel = srcPath, "/"
	}
	root, err := os.OpenFile(srcRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(fscopy.Archive(root, srcRel, fscopy.ArchiveOptions{Name: t.name, FollowLink: r.FollowLink}, pw))
	}()
	err = e.CopyToContainer(ctx, c.ID, t.dir, pr, o)
	pr.CloseWithError(err)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("copy to %s:%s: %w", c.Name, dstPath, err)
	}
	return err
}

// localStat looks at a local path, following links.
func localStat(p string) fscopy.Stat {
	fi, err := os.Stat(p)
	if err != nil {
		return fscopy.Stat{}
	}
	return fscopy.Stat{Exists: true, Dir: fi.IsDir()}
}
