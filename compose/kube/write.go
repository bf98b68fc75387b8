package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Format is how objects are written: YAML documents or JSON.
type Format string

// The output formats.
const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case YAML, JSON:
		return f, nil
	case "":
		return YAML, nil
	}
	return "", fmt.Errorf("format %q: must be yaml or json: %w", s, errdefs.ErrInvalidArgument)
}

// clean is the object as JSON without what the types marshal but nobody
// asked for: status, the null creationTimestamp, and empty objects
// (resources: {}, strategy: {}), but for those whose presence means
// something.
func clean(o Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	return m, nil
}

// meaningfulEmpty are keys whose empty object is a statement: an emptyDir
// volume, a selector of every pod.
var meaningfulEmpty = map[string]bool{"emptyDir": true, "podSelector": true}

func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			prune(x)
			if sub, ok := x.(map[string]any); x == nil || ok && len(sub) == 0 && !meaningfulEmpty[k] {
				delete(v, k)
			}
		}
	case []any:
		for _, x := range v {
			prune(x)
		}
	}
}

// Marshal writes objects as one stream: YAML documents separated by ---,
// or one JSON List.
func Marshal(objs []Object, f Format) ([]byte, error) {
	var buf bytes.Buffer
	if f == JSON {
		items := make([]any, 0, len(objs))
		for _, o := range objs {
			m, err := clean(o)
			if err != nil {
				return nil, err
			}
			items = append(items, m)
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	for i, o := range objs {
		b, err := marshalOne(o, f)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func marshalOne(o Object, f Format) ([]byte, error) {
	m, err := clean(o)
	if err != nil {
		return nil, err
	}
	if f == JSON {
		b, err := json.MarshalIndent(m, "", "  ")
		return append(b, '\n'), err
	}
	return yaml.Marshal(m)
}

// FileName is the file an object is written to in a directory:
// <name>-<kind>.<format>.
func FileName(o Object, f Format) string {
	return fmt.Sprintf("%s-%s.%s", o.GetName(), strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind), f)
}

// marker marks a directory written by berth convert, which a later
// conversion may replace whole.
const marker = ".berth-convert"

// WriteDir writes one file per object into dir, all or nothing: the files
// go to a new directory beside dir, which then takes dir's place. dir
// must be missing, empty, or written by an earlier conversion (whose files
// are all replaced, so no stale object remains).
func WriteDir(dir string, objs []Object, f Format) error {
	dir = filepath.Clean(dir)
	if err := checkDir(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, o := range objs {
		b, err := marshalOne(o, f)
		if err != nil {
			return err
		}
		// Secrets hold their values in plain base64: keep them private.
		mode := os.FileMode(0o644)
		if o.GetObjectKind().GroupVersionKind().Kind == "Secret" {
			mode = 0o600
		}
		if err := writeSynced(filepath.Join(tmp, FileName(o, f)), b, mode); err != nil {
			return err
		}
	}
	if err := writeSynced(filepath.Join(tmp, marker), []byte("written by berth convert; replaced whole by the next one\n"), 0o644); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
	} else {
		// Swap in one step, so dir is never missing or half written; the
		// old contents end in tmp and go with it.
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("replace %s: %w", dir, err)
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("output %s: not a directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return fmt.Errorf("output %s: directory is not empty and was not written by berth convert; choose a new or empty directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	return nil
}

func writeSynced(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
