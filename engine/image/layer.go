package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// maxRatio bounds how much a layer may expand: deflate cannot exceed about
// 1032:1, so only a crafted stream (a zstd bomb) goes past it.
const maxRatio = 1100

// minExpand lets tiny blobs expand past maxRatio: a few empty files in a
// small gzip are legitimately far above the ratio.
const minExpand = 1 << 20

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Layer opens the uncompressed tar stream of layer i (0 is the bottom),
// decompressing gzip or zstd as found. The stream checks itself: reading
// it to the end fails with DataLoss when it does not hash to the layer's
// diff ID, and InvalidArgument as soon as it expands past maxRatio times
// its blob.
func (s *Store) Layer(ctx context.Context, img Image, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(img.Layers) {
		return nil, fmt.Errorf("image %q: layer %d of %d: %w", img.Ref, i, len(img.Layers), errdefs.ErrInvalidArgument)
	}
	l := img.Layers[i]
	f, err := s.Blob(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %q: layer %s: %w", img.Ref, l.Digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	lr := &layerReader{id: l.DiffID, closers: []io.Closer{f}, h: sha256.New()}
	lr.left = max(st.Size()*maxRatio, minExpand)
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("image %q: layer %s: gzip: %v: %w", img.Ref, l.Digest, err, errdefs.ErrInvalidArgument)
		}
		lr.r, lr.closers = zr, append(lr.closers, zr)
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("image %q: layer %s: zstd: %v: %w", img.Ref, l.Digest, err, errdefs.ErrInvalidArgument)
		}
		lr.r, lr.closers = zr, append(lr.closers, zstdCloser{zr})
	default:
		lr.r = br
	}
	lr.r = ctxReader{ctx, lr.r}
	return lr, nil
}

type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Close() error { z.d.Close(); return nil }

type layerReader struct {
	r       io.Reader
	h       hash.Hash
	id      string
	left    int64 // bytes it may still expand to
	closers []io.Closer
	err     error
}

func (l *layerReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.h.Write(p[:n])
	l.left -= int64(n)
	switch {
	case l.left < 0:
		l.err = fmt.Errorf("layer %s: expands to more than %d times its compressed size: %w", l.id, maxRatio, errdefs.ErrInvalidArgument)
		return 0, l.err
	case err == io.EOF:
		if got := "sha256:" + hex.EncodeToString(l.h.Sum(nil)); got != l.id {
			l.err = fmt.Errorf("layer %s: content has digest %s: %w", l.id, got, errdefs.ErrDataLoss)
			return n, l.err
		}
	case err != nil && err != io.EOF:
		err = fmt.Errorf("layer %s: %v: %w", l.id, err, errdefs.ErrInvalidArgument)
		l.err = err
	}
	return n, err
}

func (l *layerReader) Close() error {
	var err error
	for i := len(l.closers) - 1; i >= 0; i-- {
		if cerr := l.closers[i].Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Unpack applies layer i of img to dir (see Apply) and checks the whole
// stream against the layer's diff ID, so a layer whose content does not
// match what its config declares is refused even when the tar ends early.
func (s *Store) Unpack(ctx context.Context, img Image, i int, dir string) error {
	rc, err := s.Layer(ctx, img, i)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := Apply(ctx, dir, rc); err != nil {
		return err
	}
	// Past the tar's end marker: padding, or content smuggled after it.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("image %q: %w", img.Ref, err)
	}
	return nil
}
