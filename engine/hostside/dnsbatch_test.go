package hostside

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublishBatchServesEachCallerWithALaterRound: every caller is served
// by a publication that began after it asked (it sees the caller's
// change), concurrent callers share publications, and a publication's
// error reaches the callers it served.
func TestPublishBatchServesEachCallerWithALaterRound(t *testing.T) {
	var b publishBatch
	var state, runs atomic.Int64
	var mu sync.Mutex
	seen := map[int64]int64{} // round number -> state it read
	publish := func(context.Context) error {
		n := runs.Add(1)
		s := state.Load()
		mu.Lock()
		seen[n] = s
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a reload takes a while
		return nil
	}
	var wg sync.WaitGroup
	const callers = 40
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := state.Add(1) // the caller's change, recorded first
			before := runs.Load()
			if err := b.do(t.Context(), publish); err != nil {
				t.Error(err)
				return
			}
			// Some round after the ones already begun saw the change.
			mu.Lock()
			defer mu.Unlock()
			for n, s := range seen {
				if n > before && s >= mine {
					return
				}
			}
			t.Errorf("no publication after round %d saw change %d: %v", before, mine, seen)
		}()
	}
	wg.Wait()
	if n := runs.Load(); n >= callers {
		t.Errorf("%d publications for %d concurrent callers: none shared", n, callers)
	}

	boom := errors.New("reload failed")
	if err := b.do(t.Context(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want the publication's", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	release := make(chan struct{})
	defer close(release)
	if err := b.do(ctx, func(context.Context) error { <-release; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller got %v", err)
	}
}
