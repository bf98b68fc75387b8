// Package snapshot keeps unpacked image layers keyed by chain ID and the
// writable layers of containers, and returns the overlayfs mounts that stack
// them into a container's root filesystem.
package snapshot
