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
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(helperBinary)) {
		return path
	}
	if os.MkdirAll(dir, 0o700) != nil || atomicfile.Write(path, helperBinary, 0o500) != nil {
		return ""
	}
	return path
}
