package image

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// parse reads a reference in any accepted spelling ("busybox",
// "docker.io/library/busybox:latest", "localhost:5000/app@sha256:...") with
// distribution/reference, the grammar Docker uses, and adds ":latest" when
// it names neither tag nor digest.
func parse(ref string) (reference.Named, error) {
	if ref == "" || strings.TrimSpace(ref) != ref {
		return nil, fmt.Errorf("image reference %q: %w", ref, errdefs.ErrInvalidArgument)
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if _, ok := n.(reference.Digested); ok {
		// A tag beside a digest says nothing more: the digest decides.
		if c, err := reference.WithDigest(reference.TrimNamed(n), n.(reference.Digested).Digest()); err == nil {
			return c, nil
		}
	}
	return reference.TagNameOnly(n), nil
}

// Normalize turns a reference in any accepted spelling into the one form
// refs are stored under ("docker.io/library/busybox:latest"), so that each
// image has exactly one key.
func Normalize(ref string) (string, error) {
	n, err := parse(ref)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// FamiliarName shortens a reference for display the way docker image ls
// does: Docker Hub's domain and "library/" namespace are dropped. Anything
// that does not parse is returned unchanged.
func FamiliarName(ref string) string {
	n, err := parse(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(n)
}

// Split returns a reference's familiar repository and its tag, or
// "<none>" when it has none (a digest reference), as docker image ls
// shows them.
func Split(ref string) (repo, tag string) {
	n, err := parse(ref)
	if err != nil {
		return ref, "<none>"
	}
	tag = "<none>"
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return reference.FamiliarName(n), tag
}

// Repository returns the normalized repository of a reference, without tag
// or digest ("docker.io/library/busybox").
func Repository(ref string) (string, error) {
	n, err := parse(ref)
	if err != nil {
		return "", err
	}
	return n.Name(), nil
}

// remoteRef turns a normalized reference into go-containerregistry's form
// for talking to its registry: plain HTTP is tried (after HTTPS) only for
// hosts r allows it for.
func remoteRef(ref string, r *Registries) (name.Reference, error) {
	n, err := parse(ref)
	if err != nil {
		return nil, err
	}
	opts := []name.Option{name.StrictValidation}
	if r.plainAllowed(reference.Domain(n)) {
		opts = append(opts, name.Insecure)
	}
	nr, err := name.ParseReference(n.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return nr, nil
}
