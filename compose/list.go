package compose

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/image"
)

// ProjectSummary is one row of berth ls, with docker compose's field names.
type ProjectSummary struct {
	Name        string
	Status      string // "running(2), exited(1)"
	ConfigFiles string
}

// ListOptions select the projects berth ls shows.
type ListOptions struct {
	All   bool   // projects whose containers are all stopped too
	Names string // only projects whose name contains this (--filter name=)
}

// List summarizes every project that has containers on this host, by name.
func List(ctx context.Context, e *engine.Engine, o ListOptions) ([]ProjectSummary, error) {
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	type tally struct {
		states map[string]int
		files  string
	}
	projects := map[string]*tally{}
	for _, i := range infos {
		name := i.Config.Labels[LabelProject]
		if name == "" || !strings.Contains(name, o.Names) {
			continue
		}
		t := projects[name]
		if t == nil {
			t = &tally{states: map[string]int{}}
			projects[name] = t
		}
		t.states[string(i.Status.State)]++
		if f := i.Config.Labels[LabelConfigFiles]; f != "" && i.Config.Labels[LabelOneoff] != "True" {
			t.files = f
		}
	}
	var out []ProjectSummary
	for _, name := range slices.Sorted(mapKeys(projects)) {
		t := projects[name]
		if !o.All && t.states["running"]+t.states["restarting"]+t.states["paused"] == 0 {
			continue
		}
		var parts []string
		for _, st := range slices.Sorted(mapKeys(t.states)) {
			parts = append(parts, fmt.Sprintf("%s(%d)", st, t.states[st]))
		}
		out = append(out, ProjectSummary{Name: name, Status: strings.Join(parts, ", "), ConfigFiles: t.files})
	}
	return out, nil
}

// ImageSummary is one row of berth images, with docker compose's field
// names.
type ImageSummary struct {
	ContainerName string
	Repository    string
	Tag           string
	ID            string
	Size          int64
	Created       string
}

// Images lists the images the project's containers (of the named
// services, all when none) were made from.
func Images(ctx context.Context, e *engine.Engine, p *types.Project, services []string) ([]ImageSummary, error) {
	infos, err := projectContainers(ctx, e, p.Name, withOneOff, services...)
	if err != nil {
		return nil, err
	}
	var out []ImageSummary
	for _, i := range infos {
		row := ImageSummary{ContainerName: i.Name, ID: i.Config.ImageID}
		row.Repository, row.Tag = image.Split(i.Config.Image)
		if img, err := e.Images.Get(ctx, i.Config.ImageID); err == nil {
			row.Size, row.Created = img.Size, img.Created.Format("2006-01-02 15:04:05 -0700 MST")
		}
		out = append(out, row)
	}
	return out, nil
}
