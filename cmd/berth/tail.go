package main

import (
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"
)

// parseTail reads --tail: "all" or a count.
func parseTail(s string) (int, error) {
	if s == "all" || s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--tail %q: want a number or \"all\": %w", s, errdefs.ErrInvalidArgument)
	}
	return n, nil
}
