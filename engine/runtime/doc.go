// Package runtime runs OCI runtime specs through runc's libcontainer embedded
// in the berth binary, under one monitor process (the shim) per container.
package runtime
