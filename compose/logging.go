package compose

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"

	"github.com/berth-dev/berth/engine/runtime"
)

// Docker's local driver keeps 5 files of 20 MiB, compressed, by default.
const (
	localMaxSize = 20 * 1024 * 1024
	localMaxFile = 5
)

// logOptionsIgnored are Docker's json-file options Berth accepts without
// acting on them: they add attributes to each entry (labels, env, tag) or
// choose a buffering mode; a warning names them (loggingWarnings).
var logOptionsIgnored = map[string]bool{
	"labels": true, "labels-regex": true, "env": true, "env-regex": true, "tag": true,
	"mode": true, "max-buffer-size": true,
}

// serviceLogging maps logging to how the shim keeps the container's
// output, with Docker's option names, defaults and refusals.
func serviceLogging(s types.ServiceConfig) (runtime.LogConfig, error) {
	var driver string
	var opts map[string]string
	if s.Logging != nil {
		driver, opts = s.Logging.Driver, s.Logging.Options
	}
	bad := func(key, format string, args ...any) (runtime.LogConfig, error) {
		return runtime.LogConfig{}, fmt.Errorf("service %q: %s: %s: %w", s.Name, key, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	var c runtime.LogConfig
	switch driver {
	case "", runtime.LogJSONFile:
		c = runtime.LogConfig{Driver: runtime.LogJSONFile}
	case runtime.LogLocal:
		c = runtime.LogConfig{Driver: runtime.LogLocal, MaxSize: localMaxSize, MaxFile: localMaxFile, Compress: true}
	case runtime.LogNone:
		if len(opts) > 0 {
			return bad("logging.options", "the none driver takes no options")
		}
		return runtime.LogConfig{Driver: runtime.LogNone}, nil
	default:
		return bad("logging.driver", "driver %q is not supported: use json-file, local or none", driver)
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		v := opts[k]
		switch {
		case k == "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return bad("logging.options.max-size", "%v", err)
			}
			if n <= 0 {
				return bad("logging.options.max-size", "%q: must be a positive size", v)
			}
			c.MaxSize = n
		case k == "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad("logging.options.max-file", "%q: must be a number of files, at least 1", v)
			}
			c.MaxFile = n
		case k == "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("logging.options.compress", "%q: must be true or false", v)
			}
			c.Compress = b
		case c.Driver == runtime.LogJSONFile && logOptionsIgnored[k], k == "mode", k == "max-buffer-size":
		default:
			return bad("logging.options", "unknown option %q for the %s driver", k, c.Driver)
		}
	}
	if c.Compress && (c.MaxSize == 0 || c.MaxFile < 2) {
		return bad("logging.options.compress", "compress needs max-size and a max-file of at least 2")
	}
	return c, nil
}

// loggingWarnings names the logging options Berth accepts and does not act
// on.
func loggingWarnings(name string, s types.ServiceConfig) []string {
	var opts map[string]string
	if s.Logging != nil {
		opts = s.Logging.Options
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if logOptionsIgnored[k] {
			out = append(out, fmt.Sprintf("service %q: logging option %q is not supported yet and is ignored", name, k))
		}
	}
	return out
}
