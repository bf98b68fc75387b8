package engine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParsePool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string
		size int
		ok   bool
	}{
		{"", "[]", 0, true},
		{"10.89.0.0/16", "[10.89.0.0/16]", 0, true},
		{"10.89.0.0/16, 172.30.0.0/15/26", "[10.89.0.0/16 172.30.0.0/15]", 26, true},
		{"10.89.1.7/16", "[10.89.0.0/16]", 0, true},
		{"fd00::/64", "", 0, false},
		{"10.89.0.0/16/8", "", 0, false},
		{"10.89.0.0/16/24,10.90.0.0/16/25", "", 0, false},
		{"nope", "", 0, false},
	} {
		pool, size, err := ParsePool(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%q: class %v", tc.in, err)
			}
			continue
		}
		if got := fmt.Sprint(pool); got != tc.want || size != tc.size {
			t.Errorf("%q: %s /%d, want %s /%d", tc.in, got, size, tc.want, tc.size)
		}
	}
}
