package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
)

// componentRe is one path component of a repository name in the
// distribution reference grammar.
var componentRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

const (
	hubDomain    = "docker.io"
	hubLibrary   = "library/"
	ggcrHubAlias = "index.docker.io"
)

// Normalize turns a reference in any accepted spelling ("busybox",
// "busybox:latest", "docker.io/library/busybox:latest") into the one form
// refs are stored under, so that each image has exactly one key.
func Normalize(ref string) (string, error) {
	if ref == "" || strings.TrimSpace(ref) != ref {
		return "", fmt.Errorf("image reference %q: %w", ref, errdefs.ErrInvalidArgument)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: invalid format: %w", ref, errdefs.ErrInvalidArgument)
	}
	repo := r.Context()
	// go-containerregistry checks characters only; the distribution grammar
	// also forbids empty components and separators at the ends ("a//b", "a-").
	for _, c := range strings.Split(repo.RepositoryStr(), "/") {
		if !componentRe.MatchString(c) {
			return "", fmt.Errorf("image reference %q: invalid repository path: %w", ref, errdefs.ErrInvalidArgument)
		}
	}
	reg := repo.RegistryStr()
	if reg == ggcrHubAlias {
		reg = hubDomain
	}
	base := reg + "/" + repo.RepositoryStr()
	switch r := r.(type) {
	case name.Tag:
		return base + ":" + r.TagStr(), nil
	case name.Digest:
		return base + "@" + r.DigestStr(), nil
	}
	return "", fmt.Errorf("image reference %q: %w", ref, errdefs.ErrInvalidArgument)
}

// FamiliarName shortens a normalized reference for display the way docker
// image ls does: Docker Hub's domain and "library/" namespace are dropped.
// Anything that does not normalize is returned unchanged.
func FamiliarName(ref string) string {
	n, err := Normalize(ref)
	if err != nil {
		return ref
	}
	rest, ok := strings.CutPrefix(n, hubDomain+"/")
	if !ok {
		return n
	}
	if short, ok := strings.CutPrefix(rest, hubLibrary); ok && !strings.Contains(repoPart(short), "/") {
		return short
	}
	return rest
}

// repoPart strips the tag or digest from a familiar reference.
func repoPart(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}
