package jsonkeys

import (
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	t.Parallel()
	type inner struct {
		X int `json:"x,omitempty"`
	}
	v := struct {
		Name  string            `json:"name"`
		Empty string            `json:"empty"`
		On    bool              `json:"on"`
		Off   bool              `json:"off"`
		Zero  int               `json:"zero"`
		List  []string          `json:"list"`
		Map   map[string]string `json:"map"`
		Obj   inner             `json:"obj"`
		Full  inner             `json:"full"`
	}{Name: "a", On: true, List: []string{}, Map: map[string]string{}, Full: inner{X: 1}}
	if got, want := Set(v), []string{"full", "name", "on"}; !slices.Equal(got, want) {
		t.Errorf("Set = %v, want %v", got, want)
	}
	if got := Set([]int{1}); got != nil {
		t.Errorf("Set of a list = %v, want none", got)
	}
}
