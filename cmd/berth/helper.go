package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// helperPath is where the lean helper this binary carries (cmd/berth-helper,
// embedded by make build) is installed: $BERTH_RUN/helper/<sum>/berth, named
// berth so ps shows "berth shim". It is installed on first use, content-
// addressed, so shims of an older binary keep theirs. "" when this binary
// carries none (a plain go build) or it cannot be installed: the engine
// then runs shims from this binary, as before.
//
// The front (cmd/berth-front) is installed beside it, as <sum>/front, where
// berth's constructor looks for it (front_linux.c); <sum> covers both. When
// the front cannot be installed, berth simply runs every command itself.
func helperPath(run string) string {
	sum := strings.Fields(helperSum)
	if len(helperBinary) == 0 || len(sum) == 0 || len(sum[0]) < 16 {
		return ""
	}
	run, err := filepath.Abs(run)
	if err != nil {
		return ""
	}
	dir := filepath.Join(run, "helper", sum[0][:16])
	path := filepath.Join(dir, "berth")
	install(dir, "front", frontBinary) // without it, berth serves everything
	if !install(dir, "berth", helperBinary) {
		return ""
	}
	return path
}

// install writes b as dir/name unless a regular file of b's size is there,
// and reports whether it is there now.
func install(dir, name string, b []byte) bool {
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(b)) {
		return true
	}
	return len(b) > 0 && os.MkdirAll(dir, 0o700) == nil && atomicfile.Write(path, b, 0o500) == nil
}
