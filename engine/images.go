package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/engine/image"
)

// RemoveImage removes an image reference (image rm). An image a container
// uses is refused unless force; with force it is untagged and stays, with
// its layers, until its last container is gone. Layers no image needs any
// more are removed with it.
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) (image.Removed, error) {
	out, err := e.Images.Remove(ctx, ref, image.RemoveOptions{Force: force, Users: e.imageUsers, Blobs: e.buildBlobs})
	if err != nil {
		return out, err
	}
	if len(out.Deleted) > 0 {
		if _, err := e.pruneLayers(ctx); err != nil {
			return out, err
		}
	}
	return out, nil
}

// PruneImages removes untagged images no container uses (all: every image
// no container uses), the blobs and unpacked layers nothing needs, and what
// crashed pulls, imports and unpacks left behind.
func (e *Engine) PruneImages(ctx context.Context, all bool) (image.Removed, int, error) {
	out, err := e.Images.Prune(ctx, all, image.RemoveOptions{Users: e.imageUsers, Blobs: e.buildBlobs})
	if err != nil {
		return out, 0, err
	}
	n, err := e.pruneLayers(ctx)
	return out, n, err
}

// imageUsers maps image IDs to the containers (any state) made from them.
func (e *Engine) imageUsers(ctx context.Context) (map[string][]string, error) {
	cs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range cs {
		out[c.Config.ImageID] = append(out[c.Config.ImageID], c.Name)
	}
	return out, nil
}

// pruneLayers removes unpacked layers of no stored image. Layers are listed
// before images are read: a layer being unpacked now belongs to an image
// whose record was written before the unpack began, so it is kept.
func (e *Engine) pruneLayers(ctx context.Context) (int, error) {
	layers, err := e.Snapshots.Layers()
	if err != nil {
		return 0, err
	}
	imgs, err := e.Images.List(ctx)
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, img := range imgs {
		for _, c := range img.ChainIDs {
			keep[c] = true
		}
	}
	n := 0
	for _, l := range layers {
		if keep[l] {
			continue
		}
		if err := e.Snapshots.RemoveLayer(ctx, l); err != nil {
			return n, fmt.Errorf("prune layers: %w", err)
		}
		n++
	}
	if err := e.Snapshots.CleanTemp(ctx); err != nil {
		return n, fmt.Errorf("prune layers: %w", err)
	}
	return n, nil
}

// Registries reads how to reach registries: the host config for insecure
// hosts and the certificates directory, Docker's configuration for
// credentials.
func (e *Engine) Registries() (*image.Registries, error) {
	c, err := LoadHostConfig(hostConfigPath())
	if err != nil {
		return nil, err
	}
	return &image.Registries{Insecure: c.InsecureRegistries, CertsDir: c.CertsDir}, nil
}

// PullImage pulls ref for platform ("" for this machine's), reporting to
// progress (nil for none).
func (e *Engine) PullImage(ctx context.Context, ref, platform string, progress func(image.Event)) (image.Image, error) {
	r, err := e.Registries()
	if err != nil {
		return image.Image{}, err
	}
	opts := []image.Option{image.WithRegistries(r), image.WithPlatform(platform)}
	if progress != nil {
		opts = append(opts, image.WithProgress(progress))
	}
	return e.Images.Pull(ctx, ref, opts...)
}

// PushImage pushes ref to its registry and returns the manifest digest.
func (e *Engine) PushImage(ctx context.Context, ref string, progress func(image.Event)) (string, error) {
	r, err := e.Registries()
	if err != nil {
		return "", err
	}
	opts := []image.Option{image.WithRegistries(r)}
	if progress != nil {
		opts = append(opts, image.WithProgress(progress))
	}
	return e.Images.Push(ctx, ref, opts...)
}
