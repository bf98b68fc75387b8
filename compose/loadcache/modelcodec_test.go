package loadcache

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestModelCodec: what gob and encoding/json lose comes back.
func TestModelCodec(t *testing.T) {
	v := ""
	web := types.ServiceConfig{Name: "web"}
	web.Entrypoint = types.ShellCommand{} // empty: not the image's
	web.Environment = types.MappingWithEquals{"UNSET": nil, "EMPTY": &v}
	web.Networks = map[string]*types.ServiceNetworkConfig{"default": nil}
	web.CustomLabels = types.Labels{"a": "b"}
	web.Extensions = types.Extensions{"x-n": map[string]any{"i": 1, "f": 1.5, "l": []any{"s", true, nil}}}
	in := &types.Project{Name: "p", Services: types.Services{"web": web}, ComposeFiles: []string{"/x/compose.yaml"}}
	data, err := encodeModel(in)
	if err != nil {
		t.Fatal(err)
	}
	// Unset fields are left out (a cache hit decodes only what is there).
	if bytes.Contains(data, []byte(`"CapAdd"`)) || !bytes.Contains(data, []byte(`"Entrypoint"`)) {
		t.Fatalf("encoding has unset fields or lacks set ones: %s", data)
	}
	out := new(types.Project)
	if err := decodeModel(data, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("decoded model differs:\n%#v\n%#v", in.Services["web"], out.Services["web"])
	}
	if _, err := encodeModel(&types.Project{Extensions: types.Extensions{"x-c": make(chan int)}}); err == nil {
		t.Fatal("a channel in an extension encoded")
	}
}
