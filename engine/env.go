package engine

import (
	"strings"

	"github.com/berth-dev/berth/engine/runtime"
)

// mergeEnv returns base with each KEY=VALUE of over replacing the same key
// or appended, keeping first-seen order. A bare KEY in over unsets nothing:
// Compose resolves bare keys before they get here.
func mergeEnv(base, over []string) []string { return runtime.MergeEnv(base, over) }

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == key {
			return true
		}
	}
	return false
}
