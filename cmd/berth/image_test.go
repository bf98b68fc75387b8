package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/image"
)

func TestImageFilter(t *testing.T) {
	t.Parallel()
	imgs := []image.Image{
		{Ref: "docker.io/library/redis:7"},
		{Ref: "docker.io/library/redis:6"},
		{Ref: "127.0.0.1:5000/app/web:1"},
		{Ref: ""}, // untagged
	}
	tests := []struct {
		filters, args []string
		want          string
	}{
		{nil, nil, "redis:7 redis:6 127.0.0.1:5000/app/web:1 <none>"},
		{[]string{"dangling=true"}, nil, "<none>"},
		{[]string{"dangling=false"}, nil, "redis:7 redis:6 127.0.0.1:5000/app/web:1"},
		{[]string{"reference=redis"}, nil, "redis:7 redis:6"},
		{[]string{"reference=redis:7"}, nil, "redis:7"},
		{[]string{"reference=*/app/*"}, nil, "127.0.0.1:5000/app/web:1"},
		{nil, []string{"redis:6"}, "redis:6"},
		{[]string{"dangling=false", "reference=red*"}, nil, "redis:7 redis:6"},
	}
	for _, tt := range tests {
		match, err := imageFilter(tt.filters, tt.args)
		if err != nil {
			t.Fatalf("%v %v: %v", tt.filters, tt.args, err)
		}
		var got []string
		for _, i := range imgs {
			if match(i) {
				name := "<none>"
				if i.Ref != "" {
					name = image.FamiliarName(i.Ref)
				}
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%v %v: %q, want %q", tt.filters, tt.args, strings.Join(got, " "), tt.want)
		}
	}
	for _, bad := range []string{"dangling=maybe", "label=x", "reference=[", "nokey"} {
		if _, err := imageFilter([]string{bad}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("--filter %s: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestRepoDigestShowsTheListedRepository(t *testing.T) {
	t.Parallel()
	d := "sha256:ab" + strings.Repeat("0", 62)
	i := image.Image{Ref: "docker.io/library/redis:7", RepoDigests: []string{"127.0.0.1:5000/redis@sha256:ff", "docker.io/library/redis@" + d}}
	if got := repoDigest(i); got != d {
		t.Errorf("repoDigest = %q, want %q", got, d)
	}
	i.Ref = "example.com/other:1"
	if got := repoDigest(i); got != "<none>" {
		t.Errorf("repoDigest of another repository = %q", got)
	}
}

func TestHistoryRows(t *testing.T) {
	t.Parallel()
	now := time.Now()
	img := image.Image{ID: "sha256:" + strings.Repeat("1", 64), Layers: []image.Layer{{Size: 1000}, {Size: 2000}}}
	cfg := &v1.ConfigFile{History: []v1.History{
		{Created: v1.Time{Time: now.Add(-time.Hour)}, CreatedBy: "ADD rootfs.tar /"},
		{Created: v1.Time{Time: now.Add(-time.Minute)}, CreatedBy: "ENV A=1", EmptyLayer: true},
		{Created: v1.Time{Time: now}, CreatedBy: "RUN " + strings.Repeat("x", 60), Comment: "c"},
	}}
	rows := historyRows(img, cfg, false)
	if len(rows) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	// Newest first; the top row has the image's ID, the others <missing>.
	if rows[0].ID != "111111111111" || rows[1].ID != "<missing>" || rows[2].ID != "<missing>" {
		t.Errorf("ids %q %q %q", rows[0].ID, rows[1].ID, rows[2].ID)
	}
	if rows[0].Size != "2kB" || rows[1].Size != "0B" || rows[2].Size != "1kB" {
		t.Errorf("sizes %q %q %q", rows[0].Size, rows[1].Size, rows[2].Size)
	}
	if len([]rune(rows[0].CreatedBy)) != 45 || rows[0].Comment != "c" {
		t.Errorf("created by %q (%d runes)", rows[0].CreatedBy, len([]rune(rows[0].CreatedBy)))
	}
	if full := historyRows(img, cfg, true); full[0].CreatedBy != cfg.History[2].CreatedBy || len(full[0].ID) != 71 {
		t.Errorf("--no-trunc: %+v", full[0])
	}
}
