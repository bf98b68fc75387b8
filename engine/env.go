package engine

import "strings"

// mergeEnv returns base with each KEY=VALUE of over replacing the same key
// or appended, keeping first-seen order. A bare KEY in over unsets nothing:
// Compose resolves bare keys before they get here.
func mergeEnv(base, over []string) []string {
	idx := make(map[string]int, len(base))
	for i, kv := range base {
		idx[envKey(kv)] = i
	}
	for _, kv := range over {
		if i, ok := idx[envKey(kv)]; ok {
			base[i] = kv
			continue
		}
		idx[envKey(kv)] = len(base)
		base = append(base, kv)
	}
	return base
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if envKey(kv) == key {
			return true
		}
	}
	return false
}

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}
