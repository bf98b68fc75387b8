package compose

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// describeChange names what differs between two service models (see
// serviceModel), for a recreate's reason: "environment.FOO changed",
// "command changed, ports added and 2 more".
func describeChange(old, cur []byte) string {
	var a, b any
	if len(old) == 0 || json.Unmarshal(old, &a) != nil || json.Unmarshal(cur, &b) != nil {
		// A container made before models were recorded.
		return "configuration changed"
	}
	var changes []string
	diffJSON("", a, b, &changes)
	if len(changes) == 0 {
		return "configuration changed"
	}
	slices.Sort(changes)
	const show = 3
	if len(changes) > show {
		return fmt.Sprintf("%s and %d more", strings.Join(changes[:show], ", "), len(changes)-show)
	}
	return strings.Join(changes, ", ")
}

// diffJSON appends "<path> changed|added|removed" for every difference,
// descending into objects; lists and scalars compare whole.
func diffJSON(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, path+" changed")
		}
		return
	}
	keys := slices.Collect(mapKeys(am))
	for k := range bm {
		if _, ok := am[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		av, inA := am[k]
		bv, inB := bm[k]
		switch {
		case !inA:
			*out = append(*out, p+" added")
		case !inB:
			*out = append(*out, p+" removed")
		default:
			diffJSON(p, av, bv, out)
		}
	}
}
