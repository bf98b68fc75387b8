//go:build berth_helper

package main

import _ "embed"

// The lean helper and its sha256sum line, built by make build before berth.
var (
	//go:embed berth-helper
	helperBinary []byte
	//go:embed berth-helper.sum
	helperSum string
)
