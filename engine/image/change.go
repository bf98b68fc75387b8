package image

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// applyChange applies one Dockerfile instruction to an imported image's
// config, as docker import --change does: CMD, ENTRYPOINT, ENV, EXPOSE,
// LABEL, USER, VOLUME, WORKDIR and STOPSIGNAL.
func applyChange(c *v1.Config, change string) error {
	instr, args, _ := strings.Cut(strings.TrimSpace(change), " ")
	args = strings.TrimSpace(args)
	bad := func(why string) error {
		return fmt.Errorf("--change %q: %s: %w", change, why, errdefs.ErrInvalidArgument)
	}
	if args == "" {
		return bad("no arguments")
	}
	switch strings.ToUpper(instr) {
	case "CMD", "ENTRYPOINT":
		var argv []string
		if strings.HasPrefix(args, "[") {
			if err := json.Unmarshal([]byte(args), &argv); err != nil {
				return bad("not a JSON array of strings")
			}
		} else {
			argv = []string{"/bin/sh", "-c", args} // shell form
		}
		if strings.EqualFold(instr, "CMD") {
			c.Cmd = argv
		} else {
			c.Entrypoint = argv
		}
	case "ENV", "LABEL":
		pairs, err := keyValues(args, strings.EqualFold(instr, "ENV"))
		if err != nil {
			return bad(err.Error())
		}
		for _, kv := range pairs {
			if strings.EqualFold(instr, "ENV") {
				c.Env = setEnv(c.Env, kv[0], kv[1])
				continue
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		for _, p := range strings.Fields(args) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		var vols []string
		if strings.HasPrefix(args, "[") {
			if err := json.Unmarshal([]byte(args), &vols); err != nil {
				return bad("not a JSON array of strings")
			}
		} else {
			vols = strings.Fields(args)
		}
		for _, v := range vols {
			if c.Volumes == nil {
				c.Volumes = map[string]struct{}{}
			}
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		c.User = args
	case "WORKDIR":
		c.WorkingDir = args
	case "STOPSIGNAL":
		c.StopSignal = args
	default:
		return bad("want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR")
	}
	return nil
}

// keyValues splits "k=v k2=\"v 2\"", or for ENV also the old "k v w" form.
func keyValues(s string, envOld bool) ([][2]string, error) {
	if envOld && !strings.Contains(strings.Fields(s)[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("want KEY=VALUE")
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			v, s = rest[1:end+1], rest[end+2:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
