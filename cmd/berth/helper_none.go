//go:build !berth_helper

package main

// A berth built without make carries no helper and runs shims itself.
var (
	helperBinary []byte
	helperSum    string
)
