package runtime

import "github.com/berth-dev/berth/engine/jsonlog"

// LogConfig is where the shim sends the container's output: Compose's
// logging key, with Docker's json-file options (local's defaults already
// filled in by whoever made it).
type LogConfig struct {
	// Driver is "json-file" (the default when empty), "local" (written as
	// json-file) or "none" (no log: output goes to attached clients only).
	Driver   string `json:"driver,omitempty"`
	MaxSize  int64  `json:"max_size,omitempty"` // bytes; 0: no rotation
	MaxFile  int    `json:"max_file,omitempty"` // files kept, the current one included; 0: 1
	Compress bool   `json:"compress,omitempty"` // gzip rotated files
}

// Drivers.
const (
	LogJSONFile = "json-file"
	LogLocal    = "local"
	LogNone     = "none"
)

// Kept reports whether the output is written to a log that logs can read.
func (c LogConfig) Kept() bool { return c.Driver != LogNone }

// Options are the json-file writer's options for this configuration.
func (c LogConfig) Options() jsonlog.Options {
	return jsonlog.Options{MaxSize: c.MaxSize, MaxFile: c.MaxFile, Compress: c.Compress}
}
