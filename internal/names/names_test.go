package names

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		project bool
		ok      bool
	}{
		{"hello", true, true},
		{"my_app-2", true, true},
		{"Hello", true, false},
		{"-x", true, false},
		{"", true, false},
		{"../etc", false, false},
		{"a/b", false, false},
		{"web.v2", false, true},
		{"Web", false, true},
		{".hidden", false, false},
	} {
		var err error
		if tc.project {
			err = Project(tc.name)
		} else {
			err = Object("service", tc.name)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: error class %v", tc.name, err)
		}
	}
}
