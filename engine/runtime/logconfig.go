package runtime

// LogConfig is where the shim sends the container's output: Compose's
// logging key, with Docker's json-file options.
type LogConfig struct {
	// Driver is "json-file" (the default when empty) or "none".
	Driver   string `json:"driver,omitempty"`
	MaxSize  int64  `json:"max_size,omitempty"` // bytes; 0: no rotation
	MaxFile  int    `json:"max_file,omitempty"` // files kept, the current one included; 0: 1
	Compress bool   `json:"compress,omitempty"` // gzip rotated files
}
