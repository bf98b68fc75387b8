//go:build berth_helper

package main

import _ "embed"

// The lean helper, the front and the sha256sum line of both, built by make
// build before berth.
var (
	//go:embed berth-helper
	helperBinary []byte
	//go:embed berth-front
	frontBinary []byte
	//go:embed berth-helper.sum
	helperSum string
)
