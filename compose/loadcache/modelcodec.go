package loadcache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync"
)

// The load cache stores models in an encoding of its own: encoding/json
// follows compose-go's tags (which leave out fields such as x-* extensions
// and custom labels) and gob cannot tell an empty list from none nor carry
// a nil pointer in a map, while `entrypoint: []` and `environment: {A:}`
// mean something. This one writes every exported field that is set, keeps
// nil apart from empty, and tags the dynamic values of extensions with
// their type.
// The cache still checks that a model comes back DeepEqual before keeping
// it.
//
// As JSON: a nil pointer, map, slice or interface is null; a pointer is a
// one-element list; a map is a list of [key, value] pairs; a struct is an
// object of its exported fields that are not zero (a zero one decodes as
// it was left); an interface is [type, value]; numbers are strings.

// encodeModel encodes v (a pointer) as described above.
func encodeModel(v any) ([]byte, error) {
	tree, err := modelTree(reflect.ValueOf(v).Elem())
	if err != nil {
		return nil, err
	}
	return json.Marshal(tree)
}

// decodeModel decodes data into v (a pointer).
func decodeModel(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var tree any
	if err := d.Decode(&tree); err != nil {
		return err
	}
	return fromModelTree(tree, reflect.ValueOf(v).Elem())
}

// dynamicTypes are the types an interface value in a model may hold: what
// YAML decoding gives x-* extensions.
var dynamicTypes = sync.OnceValue(func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, v := range []any{"", true, 0, int64(0), uint64(0), float64(0), map[string]any{}, []any{}} {
		m[reflect.TypeOf(v).String()] = reflect.TypeOf(v)
	}
	return m
})

func modelTree(v reflect.Value) (any, error) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		e, err := modelTree(v.Elem())
		return []any{e}, err
	case reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		name := v.Elem().Type().String()
		if dynamicTypes()[name] == nil {
			return nil, fmt.Errorf("model: cannot encode a %s in an interface", name)
		}
		e, err := modelTree(v.Elem())
		return []any{name, e}, err
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		out := make([]any, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := modelTree(it.Key())
			if err != nil {
				return nil, err
			}
			e, err := modelTree(it.Value())
			if err != nil {
				return nil, err
			}
			out = append(out, []any{k, e})
		}
		return out, nil
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			e, err := modelTree(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			// A zero field is left out: decoding leaves it zero (nil and
			// empty lists and maps stay apart: only nil is zero).
			if !t.Field(i).IsExported() || v.Field(i).IsZero() {
				continue
			}
			e, err := modelTree(v.Field(i))
			if err != nil {
				return nil, err
			}
			out[t.Field(i).Name] = e
		}
		return out, nil
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
	}
	return nil, fmt.Errorf("model: cannot encode a %s", v.Type())
}

// fromModelTree sets v (settable) from tree.
func fromModelTree(tree any, v reflect.Value) error {
	bad := func() error { return fmt.Errorf("model: a %T where a %s was", tree, v.Type()) }
	if tree == nil {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
			v.SetZero()
			return nil
		}
		return bad()
	}
	switch v.Kind() {
	case reflect.Pointer:
		l, ok := tree.([]any)
		if !ok || len(l) != 1 {
			return bad()
		}
		p := reflect.New(v.Type().Elem())
		if err := fromModelTree(l[0], p.Elem()); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Interface:
		l, ok := tree.([]any)
		if !ok || len(l) != 2 {
			return bad()
		}
		name, _ := l[0].(string)
		t := dynamicTypes()[name]
		if t == nil {
			return fmt.Errorf("model: unknown dynamic type %q", name)
		}
		e := reflect.New(t).Elem()
		if err := fromModelTree(l[1], e); err != nil {
			return err
		}
		v.Set(e)
	case reflect.Map:
		l, ok := tree.([]any)
		if !ok {
			return bad()
		}
		m := reflect.MakeMapWithSize(v.Type(), len(l))
		for _, kv := range l {
			pair, ok := kv.([]any)
			if !ok || len(pair) != 2 {
				return bad()
			}
			k := reflect.New(v.Type().Key()).Elem()
			if err := fromModelTree(pair[0], k); err != nil {
				return err
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := fromModelTree(pair[1], e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Slice, reflect.Array:
		l, ok := tree.([]any)
		if !ok {
			return bad()
		}
		if v.Kind() == reflect.Slice {
			v.Set(reflect.MakeSlice(v.Type(), len(l), len(l)))
		} else if len(l) != v.Len() {
			return bad()
		}
		for i, e := range l {
			if err := fromModelTree(e, v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		m, ok := tree.(map[string]any)
		if !ok {
			return bad()
		}
		for name, e := range m {
			f := v.FieldByName(name)
			if !f.IsValid() || !f.CanSet() {
				return fmt.Errorf("model: %s has no field %s", v.Type(), name)
			}
			if err := fromModelTree(e, f); err != nil {
				return err
			}
		}
	case reflect.String:
		s, ok := tree.(string)
		if !ok {
			return bad()
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := tree.(bool)
		if !ok {
			return bad()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, _ := tree.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad()
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s, _ := tree.(string)
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad()
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		s, _ := tree.(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad()
		}
		v.SetFloat(f)
	default:
		return bad()
	}
	return nil
}
