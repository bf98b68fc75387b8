package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sys/unix"
)

// fetchBlob stores blob d from fetch, verified by size and digest. Its
// bytes go to tmp/partial-<hex>, locked while written: a fetch cut short
// (a dropped connection, a cancelled pull) leaves it for the next pull,
// which hashes what is there and asks only for the rest. Once whole and
// verified it becomes the blob; a wrong one is removed. report gets the
// bytes held so far.
func (s *Store) fetchBlob(ctx context.Context, d v1.Descriptor, fetch fetchFunc, report func(int64)) error {
	p := s.path(tmpName, "partial-"+d.Digest.Hex)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		// Another pull fetches this blob now: fetch it whole, apart.
		return s.fetchWhole(ctx, d, fetch, report)
	}
	h := sha256.New()
	have, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if have >= d.Size && (have > d.Size || !sameDigest(h, d)) {
		// Left whole by a pull killed before it kept it, or wrong.
		if have, err = restart(f, h); err != nil {
			return err
		}
	}
	if have < d.Size {
		rc, start, err := fetch(d, have)
		var refused *transport.Error
		if have > 0 && errors.As(err, &refused) {
			// The registry answered, but not with the rest: start over.
			if have, err = restart(f, h); err != nil {
				return err
			}
			rc, start, err = fetch(d, 0)
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		if start != have {
			if have, err = restart(f, h); err != nil {
				return err
			}
		}
		cr := &counter{r: rc, n: have, report: report}
		n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, io.LimitReader(cr, d.Size-have+1)})
		have += n
		if err != nil {
			f.Sync() // kept for the next pull
			return err
		}
	}
	if have != d.Size {
		os.Remove(p)
		return fmt.Errorf("%d bytes, manifest says %d: %w", have, d.Size, errdefs.ErrDataLoss)
	}
	if !sameDigest(h, d) {
		os.Remove(p)
		return fmt.Errorf("blob digest sha256:%x, expected %s: %w", h.Sum(nil), d.Digest, errdefs.ErrDataLoss)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return s.commitBlob(p, d.Digest.String())
}

func sameDigest(h hash.Hash, d v1.Descriptor) bool {
	return hex.EncodeToString(h.Sum(nil)) == d.Digest.Hex
}

// restart empties a partial blob that cannot be continued.
func restart(f *os.File, h hash.Hash) (int64, error) {
	h.Reset()
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	_, err := f.Seek(0, io.SeekStart)
	return 0, err
}

// fetchWhole stores blob d through a temporary file of its own.
func (s *Store) fetchWhole(ctx context.Context, d v1.Descriptor, fetch fetchFunc, report func(int64)) error {
	rc, _, err := fetch(d, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, size, err := s.writeBlob(ctx, io.LimitReader(&counter{r: rc, report: report}, d.Size+1), d.Digest.String())
	if err != nil {
		return err
	}
	if size != d.Size {
		return fmt.Errorf("%d bytes, manifest says %d: %w", size, d.Size, errdefs.ErrDataLoss)
	}
	return nil
}
