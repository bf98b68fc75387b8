package runtime

import (
	"slices"
	"testing"
)

func TestShimEnvRunsOneProcUnlessTheSpawnerSetsIt(t *testing.T) {
	got := shimEnv([]string{"PATH=/bin", "BERTH_ROOT=/r"})
	if !slices.Equal(got, []string{"PATH=/bin", "BERTH_ROOT=/r", "GOMAXPROCS=1"}) {
		t.Errorf("shimEnv without GOMAXPROCS = %q", got)
	}
	set := []string{"GOMAXPROCS=4", "PATH=/bin"}
	if got := shimEnv(set); !slices.Equal(got, set) {
		t.Errorf("shimEnv with GOMAXPROCS=4 = %q", got)
	}
}
