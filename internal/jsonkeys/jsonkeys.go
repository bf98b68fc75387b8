// Package jsonkeys lists the keys a value sets, as its JSON encoding names
// them, so that every Compose key is accounted for by name.
package jsonkeys

import (
	"encoding/json"
	"slices"
)

// Set lists, sorted, the keys v has set, as its JSON encoding (which omits
// empty fields) names them: for compose-go types every key it knows is
// covered, including ones added in later versions. A value that does not
// encode to a JSON object has none.
func Set(v any) []string {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []string
	for k, raw := range m {
		switch string(raw) {
		case "null", "false", "{}", "[]", `""`, "0":
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
