// Package schema embeds the JSON schema of Berth's x-berth extension; the
// Compose schema itself comes with compose-go, which validates every file
// against it while loading.
package schema

import _ "embed"

// XBerth is the JSON schema of the top-level `x-berth` key of a compose
// file: the settings Berth reads beyond the Compose specification.
//
//go:embed x-berth.schema.json
var XBerth []byte
