//go:build !berth_helper

package main

// A berth built without make carries no helper and runs shims itself, and
// no front.
var (
	helperBinary []byte
	frontBinary  []byte
	helperSum    string
)
