package runtime

// Constructors in C run before the Go runtime starts: in the container's
// init (signals_linux.c), and as the container entry (entry_linux.c), where
// they cost a fraction of what a Go start would.

// #cgo CFLAGS: -Wall -Werror
import "C"
