package runtime

import "strings"

// MergeEnv returns base with each KEY=VALUE of over replacing the same key
// or appended, keeping first-seen order. base is modified.
func MergeEnv(base, over []string) []string {
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

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}
