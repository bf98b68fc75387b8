package compose

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/fscopy"
)

func TestParseCopyArg(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]copyArg{
		"web:/etc/hosts": {service: "web", path: "/etc/hosts"},
		"web:":           {service: "web", path: ""},
		"./a:b":          {path: "./a:b"},
		"/abs:x":         {path: "/abs:x"},
		"dir/x:y":        {path: "dir/x:y"},
		"-":              {path: "-"},
		"file":           {path: "file"},
	} {
		if got := parseCopyArg(in); got != want {
			t.Errorf("parseCopyArg(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// place follows docker cp's rules for where a copy lands.
func TestPlace(t *testing.T) {
	t.Parallel()
	dir := fscopy.Stat{Exists: true, Dir: true}
	file := fscopy.Stat{Exists: true}
	none := fscopy.Stat{}
	for _, tc := range []struct {
		name             string
		src              string
		srcDir, contents bool
		dst              string
		at               fscopy.Stat
		want             target
		class            error
	}{
		{"file into a directory", "/a/f", false, false, "/d", dir, target{dir: "/d", name: "f"}, nil},
		{"file over a file", "/a/f", false, false, "/d/g", file, target{dir: "/d", name: "g"}, nil},
		{"file to a new name", "/a/f", false, false, "/d/new", none, target{dir: "/d", name: "new"}, nil},
		{"file into a missing directory", "/a/f", false, false, "/d/new/", none, target{}, errdefs.ErrNotFound},
		{"directory into a directory", "/a/dir", true, false, "/d", dir, target{dir: "/d", name: "dir"}, nil},
		{"directory contents into a directory", "/a/dir/.", true, true, "/d", dir, target{dir: "/d"}, nil},
		{"directory to a new name", "/a/dir", true, false, "/d/new", none, target{dir: "/d", name: "new"}, nil},
		{"directory over a file", "/a/dir", true, false, "/d/g", file, target{}, errdefs.ErrInvalidArgument},
		{"contents of a file", "/a/f/.", false, true, "/d", dir, target{}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := place(tc.src, tc.srcDir, tc.contents, tc.dst, tc.at)
			if tc.class != nil {
				if !errors.Is(err, tc.class) {
					t.Fatalf("got %+v, want an error of class %v", got, tc.class)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}
