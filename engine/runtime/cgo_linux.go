package runtime

// Constructors in C run in the container's init before the Go runtime
// starts (signals_linux.c).

// #cgo CFLAGS: -Wall -Werror
import "C"
