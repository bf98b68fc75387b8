package procstat

import (
	"os"
	"strconv"
	"testing"
)

func TestReadSplitsTheNameFromTheFields(t *testing.T) {
	name, f, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if name == "" || len(f) < 20 || f[0] != "R" || f[1] != strconv.Itoa(os.Getppid()) {
		t.Fatalf("name %q, fields %q: want a name, state R and our parent's pid", name, f)
	}
	if _, _, err := Read(1 << 30); err == nil {
		t.Fatal("a pid that does not exist was read")
	}
}
