//go:build !seccomp

package runtime

const seccompBuilt = false
