//go:build seccomp

package runtime

// seccompBuilt is true when libcontainer was compiled with libseccomp; without
// it every start with a profile fails deep inside init.
const seccompBuilt = true
