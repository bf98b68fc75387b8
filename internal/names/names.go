// Package names validates every user-supplied name that becomes part of a
// path, a link name or a label on the host.
package names

import (
	"fmt"
	"regexp"

	"github.com/containerd/errdefs"
)

// Compose allows lower-case letters, digits, '-' and '_' in project names;
// service, volume and network names may also carry '.' and upper-case letters.
var (
	projectRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	objectRe  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// MaxLen bounds names so derived paths and labels stay reasonable.
const MaxLen = 200

// Project checks a Compose project name.
func Project(s string) error { return check("project", s, projectRe) }

// Object checks a service, container, volume or network name; kind names the
// thing in the error ("service", "volume", ...).
func Object(kind, s string) error { return check(kind, s, objectRe) }

func check(kind, s string, re *regexp.Regexp) error {
	if s == "" {
		return fmt.Errorf("%s name is empty: %w", kind, errdefs.ErrInvalidArgument)
	}
	if len(s) > MaxLen {
		return fmt.Errorf("%s name %q is longer than %d characters: %w", kind, s, MaxLen, errdefs.ErrInvalidArgument)
	}
	if !re.MatchString(s) {
		return fmt.Errorf("%s name %q must match %s: %w", kind, s, re.String(), errdefs.ErrInvalidArgument)
	}
	return nil
}
