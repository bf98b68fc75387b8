package container

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// nameOf is a record's ID and name.
type nameOf struct{ ID, Name string }

// readNames returns the ID and name of every readable record under root, in
// directory order, as readRecords would, reading only the head of each:
// a record starts with its ID and name (the first fields of Container), so
// a create's name check stops after a few tokens instead of reading and
// scanning whole records (an up -d of 20 services read 190 of them in its
// creates, a growing share of each create's CPU). A record whose head is
// otherwise (hand-written, or a future field order) is read whole. Records
// are renamed into place whole after an fsync, so a name read from the
// head is the record's.
func readNames(root string) ([]nameOf, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []nameOf
	for _, e := range ents {
		if !e.IsDir() || isLeftover(e.Name()) {
			continue
		}
		p := filepath.Join(root, e.Name(), "container.json")
		n, err := readHead(p)
		if err != nil {
			if err := atomicfile.ReadJSON(p, &n); err != nil {
				continue // none (see clean), or unreadable
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// errNotHead says a record does not start with its ID and name.
var errNotHead = errors.New("record does not start with its id and name")

// readHead decodes the "id" and "name" that open a record.
func readHead(path string) (nameOf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nameOf{}, err
	}
	defer f.Close()
	d := json.NewDecoder(f)
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nameOf{}, errNotHead
	}
	var n nameOf
	for _, want := range []string{"id", "name"} {
		k, err := d.Token()
		if err != nil || k != want {
			return nameOf{}, errNotHead
		}
		v, err := d.Token()
		s, ok := v.(string)
		if err != nil || !ok {
			return nameOf{}, errNotHead
		}
		if want == "id" {
			n.ID = s
		} else {
			n.Name = s
		}
	}
	return n, nil
}
