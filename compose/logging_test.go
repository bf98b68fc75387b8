package compose

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/runtime"
)

func TestLoggingKeys(t *testing.T) {
	for _, tc := range []struct {
		name, logging string
		want          runtime.LogConfig
		err           string
	}{
		{"default", ``, runtime.LogConfig{Driver: "json-file"}, ""},
		{"rotation", `logging: {driver: json-file, options: {max-size: 10k, max-file: "3", compress: "true"}}`,
			runtime.LogConfig{Driver: "json-file", MaxSize: 10 * 1024, MaxFile: 3, Compress: true}, ""},
		{"options alone", `logging: {options: {max-size: 1m}}`, runtime.LogConfig{Driver: "json-file", MaxSize: 1 << 20}, ""},
		{"local defaults", `logging: {driver: local}`, runtime.LogConfig{Driver: "local", MaxSize: 20 << 20, MaxFile: 5, Compress: true}, ""},
		{"local set", `logging: {driver: local, options: {max-file: "2", compress: "false"}}`, runtime.LogConfig{Driver: "local", MaxSize: 20 << 20, MaxFile: 2}, ""},
		{"none", `logging: {driver: none}`, runtime.LogConfig{Driver: "none"}, ""},
		{"ignored tag", `logging: {options: {tag: "{{.Name}}"}}`, runtime.LogConfig{Driver: "json-file"}, ""},
		{"syslog", `logging: {driver: syslog}`, runtime.LogConfig{}, `service "web": logging.driver: driver "syslog" is not supported: use json-file, local or none`},
		{"bad size", `logging: {options: {max-size: lots}}`, runtime.LogConfig{}, `service "web": logging.options.max-size:`},
		{"zero size", `logging: {options: {max-size: "0"}}`, runtime.LogConfig{}, `service "web": logging.options.max-size: "0": must be a positive size`},
		{"bad file", `logging: {options: {max-size: 1m, max-file: "0"}}`, runtime.LogConfig{}, `service "web": logging.options.max-file: "0"`},
		{"bad compress", `logging: {options: {compress: "maybe"}}`, runtime.LogConfig{}, `service "web": logging.options.compress: "maybe"`},
		{"compress alone", `logging: {options: {compress: "true"}}`, runtime.LogConfig{}, `service "web": logging.options.compress: compress needs max-size`},
		{"unknown option", `logging: {options: {max-age: 3d}}`, runtime.LogConfig{}, `service "web": logging.options: unknown option "max-age" for the json-file driver`},
		{"local labels", `logging: {driver: local, options: {labels: a}}`, runtime.LogConfig{}, `unknown option "labels" for the local driver`},
		{"none with options", `logging: {driver: none, options: {max-size: 1m}}`, runtime.LogConfig{}, `service "web": logging.options: the none driver takes no options`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadService(t, "name: lg\nservices:\n  web:\n    image: busybox\n    "+tc.logging+"\n", map[string]string{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Run.Log != tc.want {
				t.Fatalf("log %+v, want %+v", cfg.Run.Log, tc.want)
			}
		})
	}
}

func TestLoggingOptionsWithoutEffectAreWarned(t *testing.T) {
	p, err := loadYAML(t, "name: lg\nservices:\n  web:\n    image: busybox\n    logging: {driver: json-file, options: {max-size: 1m, tag: x, labels: a}}\n")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Unsupported(p), "\n")
	for _, k := range []string{"labels", "tag"} {
		if !strings.Contains(got, `service "web": logging option "`+k+`" is not supported yet and is ignored`) {
			t.Errorf("no warning for %s in %q", k, got)
		}
	}
	if strings.Contains(got, "max-size") || strings.Contains(got, `key "logging"`) {
		t.Errorf("warned of what is supported: %q", got)
	}
}
