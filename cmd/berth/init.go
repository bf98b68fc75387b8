package main

import "github.com/berth-dev/berth/engine/runtime"

// libcontainer re-executes this binary as "berth init" inside the new
// namespaces; that must happen before anything else runs.
func init() { runtime.MaybeInit() }
